#pragma once
// The text stages of a Hugging Face tokenizer.json around its model: normalizers (before
// pre-tokenization) and pre-tokenizers (cutting a text into the pieces the model encodes one
// by one). Strings are UTF-8 bytes; bytes that are not valid UTF-8 are kept as they are (one
// byte, one character).
//
// Supported normalizers: Prepend, Replace (String or Regex), Strip, Sequence.
// Supported pre-tokenizers: ByteLevel (add_prefix_space, use_regex: GPT-2's pattern), Split
// (String or Regex pattern; behaviors Removed, Isolated, MergedWithPrevious, MergedWithNext,
// Contiguous; invert), Metaspace (replacement, prepend_scheme always/first/never or the older
// add_prefix_space, split), Sequence.
// Anything else is an Error naming its JSON path and type.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/tokenizer_hf_json.h"
#include "io/tokenizer_hf_regex.h"

namespace difftx::hf {

// A Replace/Split pattern: {"String": s} (literal) or {"Regex": r} (Oniguruma).
class Pattern {
 public:
  Pattern(const Json& j, const std::string& path);
  // Non-overlapping matches, left to right, as [begin, end) byte offsets.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  std::string replace_all(std::string_view text, std::string_view with) const;
  // The literal text of a String pattern ("" for a regex).
  const std::string& literal() const { return literal_; }
  bool is_regex() const { return regex_ != nullptr; }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};
// nullptr for a JSON null (no normalizer).
std::unique_ptr<Normalizer> parse_normalizer(const Json& j, const std::string& path);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces pieces by their pre-tokenization. section_index is the index of the text's
  // section among those that added tokens cut the input into (Metaspace's prepend_scheme
  // "first" prepends only in section 0, as @huggingface/tokenizers does).
  virtual void split(std::vector<std::string>& pieces, size_t section_index) const = 0;
};
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& j, const std::string& path);

// GPT-2's bytes_to_unicode(): the UTF-8 text of the symbol byte b stands for.
const std::string& byte_symbol(uint8_t b);
// The byte a symbol (a code point) stands for, or -1.
int symbol_byte(char32_t cp);

// Characters that JavaScript's trim() removes (lstrip/rstrip of added tokens).
bool is_trim_space(char32_t cp);
std::string_view trim_start(std::string_view s);
std::string_view trim_end(std::string_view s);

}  // namespace difftx::hf
