#pragma once
// UTF-8 helpers for the tokenizers: strict validation of one sequence at a time (so that
// invalid bytes can be kept as they are, one byte per unit), the Unicode classes GPT-2's
// pre-tokenisation needs, and a byte buffer that releases only complete UTF-8 text, for
// streaming generated tokens to a terminal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace difftx::utf8 {

// Length (1..4) of the well-formed UTF-8 sequence that starts at s[i], storing its code point
// in *cp if given; 0 when the bytes at i are not a well-formed sequence (a stray continuation
// byte, an overlong form, a surrogate, a code point above U+10FFFF, or a sequence cut short by
// the end of s). Requires i < s.size().
size_t sequence_length(std::string_view s, size_t i, char32_t* cp = nullptr);

// True when all of s is well-formed UTF-8.
bool is_valid(std::string_view s);

// The classes of GPT-2's pre-tokenisation pattern: \p{L} (general category L*), \p{N} (N*),
// \s (the Unicode White_Space property), anything else. The letter and number tables come from
// Unicode 17.0 (generated with Node's \p{L} and \p{N}); the White_Space list is the Unicode
// property, as in Python's `regex` module that GPT-2's encoder.py uses. JavaScript's \s differs
// in two code points (it includes U+FEFF and excludes U+0085).
enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };
CharClass classify(char32_t cp);

// How many leading bytes of `bytes` can be shown now: all of them, except a suffix that is the
// beginning of a well-formed sequence still waiting for its continuation bytes. Bytes that can
// never become well-formed are not held back.
size_t releasable_prefix(std::string_view bytes);

// Accumulates bytes and hands back only text that is complete: push() returns the bytes that
// are ready (complete characters, and invalid bytes as they are), finish() returns whatever is
// held back (an incomplete sequence at the very end, as raw bytes). The concatenation of all
// returned strings is exactly the concatenation of all pushed bytes.
class Utf8Stream {
 public:
  std::string push(std::string_view bytes);
  std::string finish();
  // Bytes held back, waiting for the rest of a character.
  const std::string& pending() const { return pending_; }

 private:
  std::string pending_;
};

}  // namespace difftx::utf8
