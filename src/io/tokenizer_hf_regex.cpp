// Oniguruma behind hf::Regex.
#include "io/tokenizer_hf_regex.h"

#include <oniguruma.h>

#include <mutex>

#include "core/error.h"
#include "io/utf8_stream.h"

namespace difftx::hf {
namespace {

void initialize_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

std::string onig_message(int code, OnigErrorInfo* info) {
  OnigUChar buf[ONIG_MAX_ERROR_MESSAGE_LEN];
  if (info)
    onig_error_code_to_str(buf, code, info);
  else
    onig_error_code_to_str(buf, code);
  return reinterpret_cast<const char*>(buf);
}

// A copy of text in which every byte that is not part of a well-formed UTF-8 sequence is
// replaced by 0x1A (same length, so offsets are unchanged). Empty when text is valid.
std::string sanitized(std::string_view text) {
  if (utf8::is_valid(text)) return {};
  std::string out(text);
  for (size_t i = 0; i < out.size();) {
    const size_t n = utf8::sequence_length(out, i);
    if (n == 0) {
      out[i] = '\x1A';
      ++i;
    } else {
      i += n;
    }
  }
  return out;
}

}  // namespace

Regex::Regex(std::string_view pattern, const std::string& where) : where_(where) {
  initialize_once();
  check(utf8::is_valid(pattern), where, ": the regex is not valid UTF-8");
  OnigRegex reg = nullptr;
  OnigErrorInfo info{};
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int r = onig_new(&reg, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                         ONIG_SYNTAX_DEFAULT, &info);
  if (r != ONIG_NORMAL) {
    if (reg) onig_free(reg);
    throw Error(where + ": Oniguruma rejects the regex: " + onig_message(r, &info) +
                " (fix the pattern in tokenizer.json)");
  }
  regex_ = reg;
}

Regex::~Regex() {
  if (regex_) onig_free(static_cast<OnigRegex>(regex_));
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  const std::string clean = sanitized(text);
  const std::string_view s = clean.empty() ? text : std::string_view(clean);
  const auto* begin = reinterpret_cast<const OnigUChar*>(s.data());
  const auto* end = begin + s.size();
  OnigRegion* region = onig_region_new();
  size_t pos = 0;
  while (pos <= s.size()) {
    const int r = onig_search(static_cast<OnigRegex>(regex_), begin, end, begin + pos, end, region,
                              ONIG_OPTION_NONE);
    if (r == ONIG_MISMATCH) break;
    if (r < 0) {
      onig_region_free(region, 1);
      throw Error(where_ + ": regex search failed: " + onig_message(r, nullptr));
    }
    const auto b = static_cast<size_t>(region->beg[0]);
    const auto e = static_cast<size_t>(region->end[0]);
    if (e == b) {  // empty match: no piece, move on by one character
      if (b >= s.size()) break;
      const size_t n = utf8::sequence_length(s, b);
      pos = b + (n ? n : 1);
      continue;
    }
    out.emplace_back(b, e);
    pos = e;
  }
  onig_region_free(region, 1);
  return out;
}

}  // namespace difftx::hf
