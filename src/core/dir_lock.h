#pragma once
// An advisory lock on a directory that one process is writing (a training run): the file
// DIR/.difftx.lock, locked with flock(2) and holding the holder's pid. The kernel drops a flock
// when its holder dies, so the lock of a dead process (even after SIGKILL) is simply taken
// over; the pid inside is only there to name the holder in the error.
#include <string>

namespace difftx {

class DirLock {
 public:
  // Takes the lock of `dir` (which must exist) without waiting. Throws Error naming the
  // directory and the holder's pid when another process holds it.
  explicit DirLock(const std::string& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  static constexpr const char* kFileName = ".difftx.lock";

 private:
  int fd_ = -1;
};

}  // namespace difftx
