// Test support: the names of this process's threads, as `top -H`, perf and gdb show them
// (/proc/self/task/<tid>/comm).
//
//   EXPECT_EQ(vigil::test_support::ThreadsNamed("vigil-log"), 1);
//
// Thread-safety: safe from any thread; threads that start or end meanwhile may or may not
// be seen.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::test_support {

// The name of every thread of this process; a thread that ends while it is read is left out.
inline std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

// How many of this process's threads are called `name`.
inline long ThreadsNamed(std::string_view name) {
  const auto names = ThreadNames();
  return static_cast<long>(std::count(names.begin(), names.end(), name));
}

}  // namespace vigil::test_support
