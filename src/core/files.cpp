#include "core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {
std::string errno_text() { return std::strerror(errno); }

void fsync_directory_of(const fs::path& p) {
  fs::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("file not found: " + path);
  if (fs::is_directory(path, ec)) throw Error(path + " is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path + ": " + errno_text());
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error("cannot read " + path);
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error("cannot read " + path + ": " + errno_text());
  return bytes;
}

std::string read_file_text(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write " + path + ": " + errno_text());
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  // Test hook: DIFFTX_FAIL_WRITE=<substring> makes writes of matching paths fail half-way
  // with "No space left on device", as a full disk would.
  const char* fail = std::getenv("DIFFTX_FAIL_WRITE");
  if (fail && *fail && path.find(fail) != std::string::npos) {
    if (::write(fd, p, size / 2) < 0) { /* the failure below is what matters */ }
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(ENOSPC));
  }
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write " + path + ": " + why);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path + ": " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path + ": " + why);
  }
  fsync_directory_of(path);
}

StagedDirectory::StagedDirectory(const std::string& final_dir) : final_(final_dir) {
  std::error_code ec;
  if (fs::exists(final_, ec)) {
    if (!fs::is_directory(final_, ec)) throw Error(final_ + " exists and is not a directory");
    if (!fs::is_empty(final_, ec))
      throw Error(final_ + " already exists and is not empty; choose a new directory");
  }
  fs::path fp = fs::path(final_).lexically_normal();
  if (fp.filename().empty()) fp = fp.parent_path();
  tmp_ = fp.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp_, ec);
  if (!fs::create_directories(tmp_, ec) || ec)
    throw Error("cannot create directory " + tmp_ + ": " + ec.message());
}

StagedDirectory::~StagedDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void StagedDirectory::commit() {
  std::error_code ec;
  if (fs::exists(final_, ec)) fs::remove(final_, ec);  // an empty directory only
  if (::rename(tmp_.c_str(), final_.c_str()) != 0)
    throw Error("cannot create " + final_ + ": " + errno_text());
  committed_ = true;
  fsync_directory_of(fs::path(final_).lexically_normal());
}

}  // namespace difftx
