#pragma once
// File helpers: whole-file reads with clear errors, and atomic writes (temporary file in the
// same directory, fsync, rename) so that a crash never leaves a half-written file behind.
#include <cstdint>
#include <string>
#include <vector>

namespace difftx {

std::vector<uint8_t> read_file_bytes(const std::string& path);
std::string read_file_text(const std::string& path);

// Writes data to path atomically. Throws Error on any failure; the old file (if any) stays.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// Creates a fresh directory next to `final_dir`, lets the caller fill it, then renames it to
// final_dir (which must not exist, or be an empty directory). On failure the temporary
// directory is removed and final_dir is untouched.
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
  bool committed_ = false;
};

}  // namespace difftx
