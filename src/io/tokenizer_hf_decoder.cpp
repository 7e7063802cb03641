// Token-by-token tokenizer.json decoders (see tokenizer_hf_decoder.h).
#include "io/tokenizer_hf_decoder.h"

#include "io/tokenizer_hf_text.h"
#include "io/utf8_stream.h"

namespace difftx::hf {

struct Decoder::Step {
  enum Kind { kByteLevel, kReplace, kByteFallback, kStrip, kStartStrip, kMetaspace };
  Kind kind;
  bool after_fuse = false;
  std::unique_ptr<Pattern> pattern;  // kReplace
  std::string content;               // kReplace: replacement; kStrip: the character cut
  int64_t start = 0, stop = 0;       // kStrip
};

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The bytes of a ByteLevel token, or the token itself when a character is not one of the 256
// byte symbols (as `tokenizers` does).
std::string byte_level_bytes(const std::string& piece) {
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    char32_t cp = 0;
    const size_t n = utf8::sequence_length(piece, i, &cp);
    const int b = n ? symbol_byte(cp) : -1;
    if (b < 0) return piece;
    out.push_back(static_cast<char>(b));
    i += n;
  }
  return out;
}

}  // namespace

Decoder::Decoder(const Json& j, const std::string& path) {
  if (j.is_null()) return;
  none_ = false;
  bool fused = false;
  add(j, path, fused);
}

Decoder::~Decoder() = default;

void Decoder::add(const Json& j, const std::string& path, bool& fused) {
  const std::string type = type_of(j, path);
  auto after_fuse_error = [&](const char* what) {
    throw Error(path + ": " + type + " " + what +
                " after a Fuse is not supported (difftx decodes token by token)");
  };
  Step step;
  step.after_fuse = fused;
  if (type == "Sequence") {
    const Json* list = field(j, "decoders");
    check(list && list->is_array(), child(path, "decoders"), " must be a list");
    for (size_t i = 0; i < list->size(); ++i)
      add((*list)[i], element(child(path, "decoders"), i), fused);
    return;
  }
  if (type == "Fuse") {
    fused = true;
    return;
  }
  if (type == "ByteLevel") {
    if (fused) after_fuse_error("");
    step.kind = Step::kByteLevel;
  } else if (type == "ByteFallback") {
    if (fused) after_fuse_error("");
    step.kind = Step::kByteFallback;
  } else if (type == "Replace") {
    step.kind = Step::kReplace;
    step.pattern = std::make_unique<Pattern>(j.contains("pattern") ? j["pattern"] : Json(),
                                             child(path, "pattern"));
    step.content = get_string(j, "content", path, "");
    if (fused && (step.pattern->is_regex() ||
                  utf8::sequence_length(step.pattern->literal(), 0) != step.pattern->literal().size()))
      after_fuse_error("(other than of one character)");
  } else if (type == "Strip") {
    step.content = get_string(j, "content", path, " ");
    check(!step.content.empty() &&
              utf8::sequence_length(step.content, 0) == step.content.size(),
          child(path, "content"), " must be one character");
    step.start = get_int(j, "start", path, 0, 0, 1 << 20);
    step.stop = get_int(j, "stop", path, 0, 0, 1 << 20);
    if (fused) {
      if (step.stop > 0) after_fuse_error("with stop > 0");
      step.kind = Step::kStartStrip;
    } else {
      step.kind = Step::kStrip;
    }
  } else if (type == "Metaspace") {
    step.kind = Step::kMetaspace;
    step.content = get_string(j, "replacement", path, "\u2581");
    check(!step.content.empty(), child(path, "replacement"), " must be one character");
  } else {
    unsupported(path, type, "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence");
  }
  steps_.push_back(std::move(step));
}

void Decoder::decode_token(std::string piece, bool added, DecodeState& state,
                           std::string& out) const {
  const bool first_token = state.tokens_decoded++ == 0;
  if (none_) {
    if (!first_token) out.push_back(' ');
    out += piece;
    return;
  }
  // Cuts up to `count` leading `c` from the start of the whole text: state.start_cut counts
  // those cut so far, and at_start ends at the first other character.
  auto cut_text_start = [&](std::string& s, std::string_view c, int64_t count) {
    while (state.at_start && state.start_cut < count && starts_with(s, c)) {
      s.erase(0, c.size());
      ++state.start_cut;
    }
    if (!s.empty()) state.at_start = false;
  };
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::kByteLevel:
        if (!added) piece = byte_level_bytes(piece);
        break;
      case Step::kByteFallback:
        if (piece.size() == 6 && starts_with(piece, "<0x") && piece[5] == '>' &&
            hex_digit(piece[3]) >= 0 && hex_digit(piece[4]) >= 0)
          piece = std::string(1, static_cast<char>(hex_digit(piece[3]) * 16 + hex_digit(piece[4])));
        break;
      case Step::kReplace:
        piece = step.pattern->replace_all(piece, step.content);
        break;
      case Step::kStrip: {
        size_t b = 0, e = piece.size();
        for (int64_t k = 0; k < step.start && starts_with(std::string_view(piece).substr(b), step.content); ++k)
          b += step.content.size();
        for (int64_t k = 0; k < step.stop && e >= b + step.content.size() &&
                            ends_with(std::string_view(piece).substr(b, e - b), step.content);
             ++k)
          e -= step.content.size();
        piece = piece.substr(b, e - b);
        break;
      }
      case Step::kStartStrip:
        cut_text_start(piece, step.content, step.start);
        break;
      case Step::kMetaspace: {
        std::string s;
        for (size_t at = 0;;) {
          const size_t hit = piece.find(step.content, at);
          s.append(piece, at, hit == std::string::npos ? std::string::npos : hit - at);
          if (hit == std::string::npos) break;
          s.push_back(' ');
          at = hit + step.content.size();
        }
        piece = std::move(s);
        // The reference drops one leading space of the first token (of the whole text after
        // a Fuse).
        if (step.after_fuse)
          cut_text_start(piece, " ", 1);
        else if (first_token && starts_with(piece, " "))
          piece.erase(0, 1);
        break;
      }
    }
  }
  out += piece;
}

}  // namespace difftx::hf
