#include "vigil/testing/files.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "vigil/testing/text.hpp"

namespace vigil::test_support {

TempDir::TempDir(std::string_view name) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("vigil-" + std::string(name) + "-XXXXXX"))
          .string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

MemFile::MemFile() : fd_(::memfd_create("vigil-test", MFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
}

MemFile::~MemFile() { ::close(fd_); }

std::string MemFile::Text() const { return ReadFd(fd_); }

std::vector<std::string> MemFile::Lines() const { return SplitLines(Text()); }

std::vector<JsonLine> MemFile::LogLines() const { return ParseLogLines(Lines()); }

std::string ReadFd(int fd) {
  std::string all;
  char buf[65536];
  off_t offset = 0;
  for (ssize_t n; (n = ::pread(fd, buf, sizeof buf, offset)) > 0; offset += n) {
    all.append(buf, static_cast<std::size_t>(n));
  }
  return all;
}

std::string ReadFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string all = ReadFd(fd);
  ::close(fd);
  return all;
}

}  // namespace vigil::test_support
