// Normalizers and pre-tokenizers of tokenizer.json (see tokenizer_hf_text.h).
#include "io/tokenizer_hf_text.h"

#include <algorithm>
#include <array>

#include "io/utf8_stream.h"

namespace difftx::hf {
namespace {

// GPT-2's ByteLevel pattern, as the `tokenizers` ByteLevel pre-tokenizer compiles it.
constexpr const char* kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

struct ByteTables {
  std::array<std::string, 256> symbol;  // byte -> UTF-8 of its symbol
  std::array<int16_t, 0x200> byte;      // code point (< 0x200) -> byte, or -1
  ByteTables() {
    byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      append_utf8(symbol[b], cp);
      byte[cp] = static_cast<int16_t>(b);
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables tables;
  return tables;
}

// ---- normalizers ----------------------------------------------------------------------------

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string p) : prefix_(std::move(p)) {}
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prefix_ + text;
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(const Json& j, const std::string& path)
      : pattern_(j.contains("pattern") ? j["pattern"] : Json(), child(path, "pattern")),
        content_(get_string(j, "content", path, "")) {}
  std::string normalize(std::string text) const override {
    return pattern_.replace_all(text, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    std::string_view s = text;
    if (left_) s = trim_start(s);
    if (right_) s = trim_end(s);
    return std::string(s);
  }

 private:
  bool left_, right_;
};

class NormalizerSequence final : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> steps;
  std::string normalize(std::string text) const override {
    for (const auto& s : steps) text = s->normalize(std::move(text));
    return text;
  }
};

// ---- pre-tokenizers ---------------------------------------------------------------------------

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const Json& j, const std::string& path) {
  const std::string b = get_string(j, "behavior", path, "Isolated");
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  throw Error(child(path, "behavior") + " \"" + b +
              "\" is not a split behavior (Removed, Isolated, MergedWithPrevious, MergedWithNext "
              "or Contiguous)");
}

struct Span {
  size_t begin, end;
  bool is_match;
};

// The pieces of `text` that splitting at `matches` with `behavior` gives, as `tokenizers`
// SplitDelimiterBehavior defines them (empty pieces dropped).
void split_pieces(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches,
                  Behavior behavior, bool invert, std::vector<std::string>& out) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) spans.push_back({prev, b, invert});
    spans.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < text.size()) spans.push_back({prev, text.size(), invert});

  std::vector<Span> merged;
  switch (behavior) {
    case Behavior::kRemoved:
      for (const Span& s : spans)
        if (!s.is_match) merged.push_back(s);
      break;
    case Behavior::kIsolated:
      merged = spans;
      break;
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !merged.empty())
          merged.back().end = s.end;
        else
          merged.push_back(s);
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;  // the span to the right, walking backwards
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.is_match && !previous_match && !merged.empty())
          merged.back().begin = s.begin;
        else
          merged.push_back(s);
        previous_match = s.is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !merged.empty())
          merged.back().end = s.end;
        else
          merged.push_back(s);
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const Span& s : merged)
    if (s.end > s.begin) out.emplace_back(text.substr(s.begin, s.end - s.begin));
}

class Split final : public PreTokenizer {
 public:
  Split(const Json& j, const std::string& path)
      : pattern_(j.contains("pattern") ? j["pattern"] : Json(), child(path, "pattern")),
        behavior_(parse_behavior(j, path)),
        invert_(get_bool(j, "invert", path, false)) {}
  void split(std::vector<std::string>& pieces, size_t) const override {
    std::vector<std::string> out;
    for (const std::string& p : pieces) split_pieces(p, pattern_.find_all(p), behavior_, invert_, out);
    pieces = std::move(out);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(const Json& j, const std::string& path)
      : add_prefix_space_(get_bool(j, "add_prefix_space", path, false)),
        use_regex_(get_bool(j, "use_regex", path, true)) {
    if (use_regex_) regex_ = std::make_unique<Regex>(kByteLevelPattern, path + " (GPT-2 pattern)");
  }
  void split(std::vector<std::string>& pieces, size_t) const override {
    std::vector<std::string> words;
    for (std::string& p : pieces) {
      if (add_prefix_space_ && (p.empty() || p[0] != ' ')) p.insert(p.begin(), ' ');
      if (use_regex_)
        split_pieces(p, regex_->find_all(p), Behavior::kIsolated, false, words);
      else if (!p.empty())
        words.push_back(std::move(p));
    }
    pieces.clear();
    const ByteTables& t = byte_tables();
    for (const std::string& w : words) {
      std::string mapped;
      mapped.reserve(w.size() * 2);
      for (const char c : w) mapped += t.symbol[static_cast<uint8_t>(c)];
      pieces.push_back(std::move(mapped));
    }
  }

 private:
  bool add_prefix_space_, use_regex_;
  std::unique_ptr<Regex> regex_;
};

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(const Json& j, const std::string& path) {
    replacement_ = get_string(j, "replacement", path, "\u2581");
    check(!replacement_.empty() && utf8::sequence_length(replacement_, 0) == replacement_.size(),
          child(path, "replacement"), " must be one character");
    // Older files say add_prefix_space (true: always); newer ones prepend_scheme.
    std::string scheme = get_bool(j, "add_prefix_space", path, true) ? "always" : "never";
    scheme = get_string(j, "prepend_scheme", path, scheme.c_str());
    if (scheme == "always") {
      scheme_ = kAlways;
    } else if (scheme == "first") {
      scheme_ = kFirst;
    } else if (scheme == "never") {
      scheme_ = kNever;
    } else {
      throw Error(child(path, "prepend_scheme") + " \"" + scheme +
                  "\" is not one of always, first, never");
    }
    split_ = get_bool(j, "split", path, true);
  }
  void split(std::vector<std::string>& pieces, size_t section_index) const override {
    std::vector<std::string> out;
    for (const std::string& p : pieces) {
      std::string s;
      for (const char c : p) {
        if (c == ' ')
          s += replacement_;
        else
          s.push_back(c);
      }
      const bool prepend = scheme_ == kAlways || (scheme_ == kFirst && section_index == 0);
      if (prepend && s.compare(0, replacement_.size(), replacement_) != 0) s = replacement_ + s;
      if (!split_) {
        if (!s.empty()) out.push_back(std::move(s));
        continue;
      }
      std::vector<std::pair<size_t, size_t>> matches;
      for (size_t at = s.find(replacement_); at != std::string::npos;
           at = s.find(replacement_, at + replacement_.size()))
        matches.emplace_back(at, at + replacement_.size());
      split_pieces(s, matches, Behavior::kMergedWithNext, false, out);
    }
    pieces = std::move(out);
  }

 private:
  enum Scheme { kAlways, kFirst, kNever };
  std::string replacement_;
  Scheme scheme_ = kAlways;
  bool split_ = true;
};

class PreTokenizerSequence final : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  void split(std::vector<std::string>& pieces, size_t section_index) const override {
    for (const auto& s : steps) s->split(pieces, section_index);
  }
};

}  // namespace

// ---- Pattern ---------------------------------------------------------------------------------

Pattern::Pattern(const Json& j, const std::string& path) {
  check(j.is_object(), path, " must be {\"String\": ...} or {\"Regex\": ...}");
  if (const Json* s = field(j, "String")) {
    check(s->is_string(), path, ".String must be a string");
    literal_ = s->get<std::string>();
    check(!literal_.empty(), path, ".String must not be empty");
  } else if (const Json* r = field(j, "Regex")) {
    check(r->is_string(), path, ".Regex must be a string");
    regex_ = std::make_unique<Regex>(r->get<std::string>(), path + ".Regex");
  } else {
    throw Error(path + " must be {\"String\": ...} or {\"Regex\": ...}");
  }
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t at = text.find(literal_); at != std::string_view::npos;
       at = text.find(literal_, at + literal_.size()))
    out.emplace_back(at, at + literal_.size());
  return out;
}

std::string Pattern::replace_all(std::string_view text, std::string_view with) const {
  std::string out;
  size_t prev = 0;
  for (const auto& [b, e] : find_all(text)) {
    out.append(text.substr(prev, b - prev));
    out.append(with);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

// ---- parsing ---------------------------------------------------------------------------------

std::unique_ptr<Normalizer> parse_normalizer(const Json& j, const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, path);
  if (type == "Prepend") return std::make_unique<Prepend>(get_string(j, "prepend", path));
  if (type == "Replace") return std::make_unique<Replace>(j, path);
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(get_bool(j, "strip_left", path, true),
                                             get_bool(j, "strip_right", path, true));
  if (type == "Sequence") {
    const Json* list = field(j, "normalizers");
    check(list && list->is_array(), child(path, "normalizers"), " must be a list");
    auto seq = std::make_unique<NormalizerSequence>();
    for (size_t i = 0; i < list->size(); ++i) {
      auto step = parse_normalizer((*list)[i], element(child(path, "normalizers"), i));
      if (step) seq->steps.push_back(std::move(step));
    }
    return seq;
  }
  unsupported(path, type, "Prepend, Replace, Strip, Sequence");
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& j, const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, path);
  if (type == "ByteLevel") return std::make_unique<ByteLevel>(j, path);
  if (type == "Split") return std::make_unique<Split>(j, path);
  if (type == "Metaspace") return std::make_unique<Metaspace>(j, path);
  if (type == "Sequence") {
    const Json* list = field(j, "pretokenizers");
    check(list && list->is_array(), child(path, "pretokenizers"), " must be a list");
    auto seq = std::make_unique<PreTokenizerSequence>();
    for (size_t i = 0; i < list->size(); ++i) {
      auto step = parse_pre_tokenizer((*list)[i], element(child(path, "pretokenizers"), i));
      if (step) seq->steps.push_back(std::move(step));
    }
    return seq;
  }
  unsupported(path, type, "ByteLevel, Split, Metaspace, Sequence");
}

const std::string& byte_symbol(uint8_t b) { return byte_tables().symbol[b]; }

int symbol_byte(char32_t cp) { return cp < 0x200 ? byte_tables().byte[cp] : -1; }

bool is_trim_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

std::string_view trim_start(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = 0;
    const size_t n = utf8::sequence_length(s, i, &cp);
    if (n == 0 || !is_trim_space(cp)) break;
    i += n;
  }
  return s.substr(i);
}

std::string_view trim_end(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;  // back up to the start of the last character
    while (start > 0 && end - start < 4 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    char32_t cp = 0;
    const size_t n = utf8::sequence_length(s, start, &cp);
    if (n != end - start || !is_trim_space(cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

}  // namespace difftx::hf
