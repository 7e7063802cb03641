#pragma once
// Training data: text files (a file, a folder, or a glob) tokenised once into a binary cache
// (train/token_cache.h) that later runs read back into memory. The cache header records the
// tokenizer's fingerprint and a hash of every source file, so a stale cache is rebuilt instead
// of silently reused; a corrupt one (bad header, wrong size, an id outside the tokenizer's
// vocabulary) is rebuilt too, with a warning. Documents are separated by the tokenizer's
// end-of-text id when it has one.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace difftx {

class Tokenizer;

// The source files a PATH names (file, folder searched recursively, or glob), sorted.
// Throws Error when nothing readable matches.
std::vector<std::string> resolve_sources(const std::string& path);

class TokenData {
 public:
  // Opens the cache for (sources, tokenizer) under cache_dir, building it when missing or
  // stale. Throws Error for missing or empty data.
  static std::unique_ptr<TokenData> open(const std::string& path, const Tokenizer& tok,
                                         const std::string& cache_dir);
  TokenData(const TokenData&) = delete;
  TokenData& operator=(const TokenData&) = delete;

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  // Every id is below the tokenizer's vocab_size (validated when the cache was read).
  int32_t at(int64_t i) const { return static_cast<int32_t>(ids_[static_cast<size_t>(i)]); }
  const uint32_t* data() const { return ids_.data(); }
  const std::string& cache_path() const { return cache_path_; }
  int64_t source_bytes() const { return source_bytes_; }

  // Fills tokens[b*(T+1) .. ] with B windows of T+1 consecutive ids, starting at positions
  // drawn from a generator seeded by (seed, step): the same (seed, step) always gives the
  // same batch, so a resumed run sees exactly the batches it would have seen.
  void sample_windows(uint64_t seed, int64_t step, int64_t B, int64_t T,
                      std::vector<int32_t>& tokens) const;
  // The i-th (0 <= i < count) of `count` windows of T+1 ids spread evenly over the data (for
  // deterministic evaluation).
  void even_window(int64_t i, int64_t count, int64_t T, int32_t* out) const;

 private:
  TokenData() = default;
  std::string cache_path_;
  int64_t source_bytes_ = 0;
  std::vector<uint32_t> ids_;
};

// Default place for token caches: $DIFFTX_CACHE/tokens, else $XDG_CACHE_HOME/difftx/tokens,
// else ~/.cache/difftx/tokens.
std::string default_cache_dir();

}  // namespace difftx
