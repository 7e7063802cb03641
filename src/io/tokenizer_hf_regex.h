#pragma once
// The regular expressions of Hugging Face tokenizer.json files (Split pre-tokenizer, Replace
// normalizer and decoder), compiled with Oniguruma as the Rust `tokenizers` library does
// (default Oniguruma syntax, UTF-8).
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace difftx::hf {

class Regex {
 public:
  // Throws Error naming `where` (a JSON path) and Oniguruma's message when the pattern does
  // not compile.
  Regex(std::string_view pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The non-overlapping, non-empty matches in text, left to right, as [begin, end) byte
  // offsets (after an empty match the search resumes one character further, as Rust's
  // find_iter does). Bytes of text that are not valid UTF-8 are searched as if each were the
  // control character U+001A (like U+FFFD, neither letter, number nor space), so the offsets
  // still index the original bytes. Safe to call from several threads at once.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  void* regex_ = nullptr;  // OnigRegex
  std::string where_;
};

}  // namespace difftx::hf
