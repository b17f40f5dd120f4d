// Test support: files a test writes and reads back. A fresh temporary directory removed
// with everything in it; an anonymous in-memory file to hand a writer as a descriptor;
// the whole content of a file or descriptor.
//
//   vigil::test_support::TempDir dir("catalog");
//   options.target = dir.File("catalog.db");
//
//   vigil::test_support::MemFile out;
//   LoggerOptions o;
//   o.fd = out.fd();
//   ...
//   for (const JsonLine& line : out.LogLines()) ...
//
// Thread-safety: none of their own; a MemFile may be read while another thread writes to
// its descriptor (the reader sees a prefix of what was written).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/testing/log_lines.hpp"

namespace vigil::test_support {

// A new directory vigil-<name>-XXXXXX under the system's temporary directory; removed,
// with everything in it, when the object goes away. Throws std::runtime_error when the
// directory cannot be made.
class TempDir {
 public:
  explicit TempDir(std::string_view name = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the directory.
  std::string File(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// An anonymous file in memory (memfd), closed when the object goes away. Throws
// std::system_error when it cannot be made.
class MemFile {
 public:
  MemFile();
  ~MemFile();
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  int fd() const { return fd_; }
  // Everything written so far, read from the start whatever the descriptor's offset.
  std::string Text() const;
  // Text() as SplitLines (text.hpp) gives it: a test failure when it does not end with a
  // newline.
  std::vector<std::string> Lines() const;
  // Lines() as log lines (ParseLogLines).
  std::vector<JsonLine> LogLines() const;

 private:
  int fd_;
};

// The bytes of `fd` from offset 0 to its end (pread: the descriptor's offset is not
// moved); what could be read when a read fails.
std::string ReadFd(int fd);

// The content of the file at `path`; empty when it cannot be opened.
std::string ReadFile(const std::filesystem::path& path);

}  // namespace vigil::test_support
