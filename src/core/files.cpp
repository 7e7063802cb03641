#include "core/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/cleanup.h"
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

// "a FIFO", "a directory", ... for an st_mode that is not a regular file.
std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Reads everything from fd (a regular file of `expected` bytes, or a pipe when expected < 0).
std::vector<uint8_t> read_all(int fd, const std::string& path, off_t expected) {
  std::vector<uint8_t> bytes(expected > 0 ? static_cast<size_t>(expected) : 0);
  size_t got = 0;
  for (;;) {
    if (got == bytes.size()) {
      if (expected >= 0) break;  // a regular file: its size was taken from fstat
      bytes.resize(bytes.size() * 2 + 65536);
    }
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot read " + path + ": " + errno_text());
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (expected >= 0 && got != bytes.size())
    throw Error("cannot read " + path + ": the file shrank while it was read");
  bytes.resize(got);
  return bytes;
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }
}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then tells what it is.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw Error("file not found: " + path);
    throw Error("cannot open " + path + ": " + errno_text());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error("cannot read " + path + ": " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + " is " + kind_of(st.st_mode) + ", expected a regular file");
  }
  try {
    auto bytes = read_all(fd, path, st.st_size);
    ::close(fd);
    return bytes;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

std::string read_file_text(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

std::string read_input_text(const std::string& path) {
  if (path != "-") return read_file_text(path);
  const auto bytes = read_all(STDIN_FILENO, "standard input", -1);
  return std::string(bytes.begin(), bytes.end());
}

void check_replaceable_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // absent (or unreachable: the write will say)
  if (!S_ISREG(st.st_mode))
    throw Error("will not write " + path + ": it is " + kind_of(st.st_mode) +
                ", not a regular file; choose another output path");
}

void remove_stale_temporaries(const std::string& target) {
  fs::path t = fs::path(target).lexically_normal();
  if (t.filename().empty()) t = t.parent_path();
  const std::string prefix = t.filename().string() + ".tmp.";
  const fs::path dir = t.parent_path().empty() ? fs::path(".") : t.parent_path();
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid <= 0 || pid == ::getpid() || process_alive(pid)) continue;
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  check_replaceable_file(path);
  remove_stale_temporaries(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  // Registered before it exists, so a SIGINT/SIGTERM right after the open still removes it.
  const int slot = register_temporary(tmp);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    unregister_temporary(slot);
    throw Error("cannot write " + path + ": " + errno_text());
  }
  auto fail = [&](const std::string& why) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    unregister_temporary(slot);
    throw Error("cannot write " + path + ": " + why);
  };
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  // Test hook: DIFFTX_FAIL_WRITE=<substring> makes writes of matching paths fail half-way
  // with "No space left on device", as a full disk would.
  const char* fail_hook = std::getenv("DIFFTX_FAIL_WRITE");
  if (fail_hook && *fail_hook && path.find(fail_hook) != std::string::npos) {
    if (::write(fd, p, size / 2) < 0) { /* the failure below is what matters */ }
    fail(std::strerror(ENOSPC));
  }
  // Test hook: DIFFTX_PAUSE_WRITE=<substring> stops half-way through writing matching paths
  // (for tests that kill a writer mid-save and look at what it leaves).
  const char* pause_hook = std::getenv("DIFFTX_PAUSE_WRITE");
  if (pause_hook && *pause_hook && path.find(pause_hook) != std::string::npos) {
    if (::write(fd, p, size / 2) < 0) { /* paused anyway */ }
    for (;;) ::pause();
  }
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(errno_text());
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail(errno_text());
  const int closing = fd;
  fd = -1;
  if (::close(closing) != 0) fail(errno_text());
  check_replaceable_file(path);  // it may have been replaced by a FIFO meanwhile
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail(errno_text());
  unregister_temporary(slot);
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
  remove_stale_temporaries(fp.string());
  tmp_ = fp.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp_, ec);
  cleanup_slot_ = register_temporary(tmp_);  // before it exists: see write_file_atomic
  if (!fs::create_directories(tmp_, ec) || ec) {
    unregister_temporary(cleanup_slot_);
    throw Error("cannot create directory " + tmp_ + ": " + ec.message());
  }
}

StagedDirectory::~StagedDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  unregister_temporary(cleanup_slot_);
}

void StagedDirectory::commit() {
  std::error_code ec;
  if (fs::exists(final_, ec)) fs::remove(final_, ec);  // an empty directory only
  if (::rename(tmp_.c_str(), final_.c_str()) != 0)
    throw Error("cannot create " + final_ + ": " + errno_text());
  committed_ = true;
  unregister_temporary(cleanup_slot_);
  cleanup_slot_ = -1;
  fsync_directory_of(fs::path(final_).lexically_normal());
}

}  // namespace difftx
