#pragma once
// File helpers, the one place where difftx opens what the user names:
//  - reads refuse anything that is not a regular file (a FIFO, a device, a directory, a
//    socket) with a clear error, and never block while opening (O_NONBLOCK, then fstat);
//  - writes are atomic (temporary file in the same directory, fsync, rename) so that a crash
//    never leaves a half-written file behind, and never replace an existing target that is
//    not a regular file (a FIFO, /dev/full, a directory);
//  - temporaries are named <target>.tmp.<pid>; those of processes that no longer run are
//    removed by the next writer of the same target, and this process's own are removed on
//    SIGINT/SIGTERM (core/cleanup.h).
#include <cstdint>
#include <string>
#include <vector>

namespace difftx {

std::vector<uint8_t> read_file_bytes(const std::string& path);
std::string read_file_text(const std::string& path);
// As read_file_text, but "-" reads standard input to its end (a pipe or a terminal is fine
// there: the user asked for it).
std::string read_input_text(const std::string& path);

// Throws Error when path exists and is not a regular file (following symbolic links): a FIFO,
// device or directory is never replaced by a write.
void check_replaceable_file(const std::string& path);

// Writes data to path atomically. Throws Error on any failure; the old file (if any) stays.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// Removes "<target>.tmp.<pid>" files and folders whose process no longer exists (debris of a
// killed writer). Called by write_file_atomic and StagedDirectory; errors are ignored.
void remove_stale_temporaries(const std::string& target);

// Creates a fresh directory next to `final_dir`, lets the caller fill it, then renames it to
// final_dir (which must not exist, or be an empty directory). On failure (or SIGINT/SIGTERM)
// the temporary directory is removed and final_dir is untouched.
class StagedDirectory {
 public:
  explicit StagedDirectory(const std::string& final_dir);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;
  const std::string& path() const { return tmp_; }
  void commit();

 private:
  std::string final_;
  std::string tmp_;
  int cleanup_slot_ = -1;
  bool committed_ = false;
};

}  // namespace difftx
