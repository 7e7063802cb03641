// SentencePiece models through libsentencepiece: loading any .model, exact round trips for
// models with byte fallback (see tokenizer.h), and training new models.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "core/files.h"
#include "io/tokenizer.h"
#include "io/utf8_stream.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, sentencepiece's space

// ---- The few model settings decoding needs, read from the serialized ModelProto -------------
// (libsentencepiece installs no protobuf headers, so this walks the wire format directly:
// ModelProto.trainer_spec = 2, .normalizer_spec = 3, .denormalizer_spec = 5;
// TrainerSpec.byte_fallback = 35, .unk_surface = 44;
// NormalizerSpec.name = 1, .add_dummy_prefix = 3, .remove_extra_whitespaces = 4.)

struct SpmSettings {
  std::string normalizer_name;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool byte_fallback = false;
  bool has_denormalizer = false;
  std::string unk_surface = " \xE2\x81\x87 ";
};

class ProtoReader {
 public:
  explicit ProtoReader(std::string_view s) : s_(s) {}
  // Calls f(field, wire_type, varint, bytes) for each field; false on malformed input.
  template <class F>
  bool each(F&& f) {
    while (pos_ < s_.size()) {
      uint64_t key = 0;
      if (!varint(key)) return false;
      const int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
      uint64_t v = 0;
      std::string_view bytes;
      switch (wt) {
        case 0:
          if (!varint(v)) return false;
          break;
        case 1:
          if (s_.size() - pos_ < 8) return false;
          pos_ += 8;
          break;
        case 2:
          if (!varint(v) || v > s_.size() - pos_) return false;
          bytes = s_.substr(pos_, v);
          pos_ += v;
          break;
        case 5:
          if (s_.size() - pos_ < 4) return false;
          pos_ += 4;
          break;
        default:
          return false;
      }
      f(field, wt, v, bytes);
    }
    return true;
  }

 private:
  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && pos_ < s_.size(); shift += 7) {
      const auto b = static_cast<uint8_t>(s_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  std::string_view s_;
  size_t pos_ = 0;
};

SpmSettings read_settings(std::string_view model) {
  SpmSettings st;
  ProtoReader(model).each([&](int field, int wt, uint64_t, std::string_view bytes) {
    if (wt != 2) return;
    if (field == 2) {
      ProtoReader(bytes).each([&](int f, int w, uint64_t v, std::string_view b) {
        if (f == 35 && w == 0) st.byte_fallback = v != 0;
        if (f == 44 && w == 2) st.unk_surface = std::string(b);
      });
    } else if (field == 3) {
      ProtoReader(bytes).each([&](int f, int w, uint64_t v, std::string_view b) {
        if (f == 1 && w == 2) st.normalizer_name = std::string(b);
        if (f == 3 && w == 0) st.add_dummy_prefix = v != 0;
        if (f == 4 && w == 0) st.remove_extra_whitespaces = v != 0;
      });
    } else if (field == 5) {
      st.has_denormalizer = true;
    }
  });
  return st;
}

std::string replace_space_symbol(std::string_view piece) {
  std::string out;
  size_t i = 0;
  while (i < piece.size()) {
    if (piece.substr(i, kSpaceSymbol.size()) == kSpaceSymbol) {
      out.push_back(' ');
      i += kSpaceSymbol.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::string model, const std::string& path) : model_(std::move(model)) {
    const auto status = sp_.LoadFromSerializedProto(model_);
    if (!status.ok())
      throw Error("cannot load sentencepiece model " + path + ": " + status.ToString());
    const int n = sp_.GetPieceSize();
    if (n <= 0) throw Error("cannot load sentencepiece model " + path + ": it has no pieces");
    settings_ = read_settings(model_);
    kinds_.resize(n);
    text_.resize(n);
    byte_.resize(n, 0);
    std::fill(std::begin(byte_id_), std::end(byte_id_), -1);
    for (int id = 0; id < n; ++id) {
      const std::string& piece = sp_.IdToPiece(id);
      if (sp_.IsByte(id)) {
        kinds_[id] = kByte;
        unsigned v = 0;
        if (piece.size() != 6 || std::sscanf(piece.c_str(), "<0x%02X>", &v) != 1 || v > 255)
          throw Error("cannot load sentencepiece model " + path + ": bad byte piece \"" + piece +
                      "\"");
        byte_[id] = static_cast<uint8_t>(v);
        byte_id_[v] = id;
      } else if (sp_.IsControl(id)) {
        kinds_[id] = kControl;
      } else if (sp_.IsUnknown(id)) {
        kinds_[id] = kUnknown;
      } else {
        kinds_[id] = std::string_view(piece).substr(0, kSpaceSymbol.size()) == kSpaceSymbol
                         ? kNormalSpace
                         : kNormal;
        text_[id] = replace_space_symbol(piece);
      }
    }
    all_bytes_ =
        std::none_of(std::begin(byte_id_), std::end(byte_id_), [](int v) { return v < 0; });
    std::string lossy;
    if (!settings_.byte_fallback || !all_bytes_) lossy += "it has no byte fallback; ";
    if (!settings_.normalizer_name.empty() && settings_.normalizer_name != "identity")
      lossy += "it normalises text (" + settings_.normalizer_name + "); ";
    if (settings_.remove_extra_whitespaces) lossy += "it removes extra whitespace; ";
    if (settings_.has_denormalizer) lossy += "it has a denormaliser, which difftx ignores; ";
    if (!lossy.empty())
      warn("sentencepiece model " + path + ": decode(encode(text)) may differ from the text: " +
           lossy.substr(0, lossy.size() - 2));
  }

  std::string kind() const override { return "sentencepiece"; }
  int32_t vocab_size() const override { return static_cast<int32_t>(kinds_.size()); }
  int32_t eos_id() const override { return sp_.eos_id(); }

  std::vector<int32_t> encode(std::string_view text) const override {
    if (text.empty()) return {};
    const bool plain =
        utf8::is_valid(text) && text.find(kSpaceSymbol) == std::string_view::npos;
    if (plain || !all_bytes_) {
      std::vector<int> ids;
      const auto status = sp_.Encode(text, &ids);
      if (!status.ok()) throw Error("sentencepiece cannot encode the text: " + status.ToString());
      return std::vector<int32_t>(ids.begin(), ids.end());
    }
    return encode_keeping_raw_bytes(text);
  }

  // Mirrors SentencePieceProcessor::Decode, except that byte pieces give their raw byte (the
  // library turns bytes that are not valid UTF-8 into U+FFFD) and a denormaliser is not run.
  void decode_append(int32_t id, DecodeState& st, std::string& out) const override {
    if (id < 0 || id >= vocab_size())
      throw Error("token id " + std::to_string(id) +
                  " is out of range for the sentencepiece tokenizer (ids 0.." +
                  std::to_string(vocab_size() - 1) + ")");
    const Kind k = kinds_[static_cast<size_t>(id)];
    if (k == kByte) {
      out.push_back(static_cast<char>(byte_[static_cast<size_t>(id)]));
      st.any_output = true;
      return;
    }
    if (st.start_space_seen || st.any_output) st.at_start = false;
    bool consumed_space = false;
    std::string_view piece;
    if (k == kUnknown) {
      piece = settings_.unk_surface;
    } else if (k == kNormal || k == kNormalSpace) {
      piece = text_[static_cast<size_t>(id)];
      if (k == kNormalSpace && st.at_start &&
          (settings_.add_dummy_prefix || settings_.remove_extra_whitespaces)) {
        piece.remove_prefix(1);
        consumed_space = !settings_.remove_extra_whitespaces;
      }
    }
    st.start_space_seen = consumed_space;
    out.append(piece);
    if (!piece.empty()) st.any_output = true;
  }

  std::vector<SavedFile> files_to_save() const override {
    return {{"model", "tokenizer.model", model_}};
  }

 private:
  enum Kind : uint8_t { kNormal, kNormalSpace, kControl, kUnknown, kByte };

  // Two kinds of bytes do not survive sentencepiece: bytes that are not valid UTF-8 (turned
  // into U+FFFD before encoding) and U+2581 itself (sentencepiece's space symbol, decoded as a
  // space). Encode with offsets, then replace every piece whose source span holds such bytes
  // (and the empty byte pieces just before it that spell the same character) by the span's own
  // bytes as byte-fallback tokens, so that decoding gives back the original bytes.
  std::vector<int32_t> encode_keeping_raw_bytes(std::string_view text) const {
    sentencepiece::ImmutableSentencePieceText spt;
    const auto status = sp_.Encode(text, spt.mutable_proto());
    if (!status.ok()) throw Error("sentencepiece cannot encode the text: " + status.ToString());
    std::vector<uint32_t> bad(text.size() + 1, 0);  // prefix counts of bytes to keep raw
    for (size_t i = 0; i < text.size();) {
      const size_t n = utf8::sequence_length(text, i);
      const size_t step = n == 0 ? 1 : n;
      const bool raw = n == 0 || text.substr(i, n) == kSpaceSymbol;
      for (size_t k = 0; k < step; ++k) bad[i + k + 1] = bad[i + k] + (raw ? 1 : 0);
      i += step;
    }
    struct Out {
      int32_t id;
      uint32_t begin, end;
    };
    std::vector<Out> out;
    out.reserve(spt.pieces_size());
    for (size_t i = 0; i < spt.pieces_size(); ++i) {
      const auto p = spt.pieces(static_cast<int>(i));
      const uint32_t b = std::min<uint32_t>(p.begin(), text.size());
      const uint32_t e = std::min<uint32_t>(p.end(), text.size());
      if (e > b && bad[e] > bad[b]) {
        while (!out.empty() && kinds_[static_cast<size_t>(out.back().id)] == kByte &&
               out.back().begin == b && out.back().end == b)
          out.pop_back();
        for (uint32_t k = b; k < e; ++k)
          out.push_back({byte_id_[static_cast<uint8_t>(text[k])], k, k + 1});
      } else {
        out.push_back({static_cast<int32_t>(p.id()), b, e});
      }
    }
    std::vector<int32_t> ids(out.size());
    for (size_t i = 0; i < out.size(); ++i) ids[i] = out[i].id;
    return ids;
  }

  std::string model_;
  sentencepiece::SentencePieceProcessor sp_;
  SpmSettings settings_;
  std::vector<Kind> kinds_;
  std::vector<std::string> text_;  // normal pieces with U+2581 turned into spaces
  std::vector<uint8_t> byte_;
  int32_t byte_id_[256];
  bool all_bytes_ = false;
};

// ---- Training -----------------------------------------------------------------------------

constexpr size_t kMaxSentence = 4096;

std::vector<std::string> collect_training_files(const std::vector<std::string>& inputs) {
  check_field(!inputs.empty(), "data", ": no training data given");
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!fs::exists(in, ec)) throw Error("training data not found: " + in);
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(in, ec); !ec && it != fs::end(it);
           it.increment(ec))
        if (it->is_regular_file(ec) && it->path().extension() == ".txt")
          found.push_back(it->path().string());
      if (ec) throw Error("cannot list " + in + ": " + ec.message());
      if (found.empty()) throw Error("no .txt files in " + in);
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(in);
    }
  }
  return files;
}

// Feeds the trainer the non-empty lines of each file, cutting lines longer than kMaxSentence
// at the last space before the limit (or at a character boundary).
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::vector<std::string> files) : files_(std::move(files)) { Next(); }
  bool done() const override { return done_; }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }
  void Next() override {
    while (true) {
      if (pos_ >= text_.size()) {
        if (file_ >= files_.size()) {
          done_ = true;
          return;
        }
        text_ = read_file_text(files_[file_++]);
        bytes_ += text_.size();
        pos_ = 0;
        continue;
      }
      size_t end = text_.find('\n', pos_);
      if (end == std::string::npos) end = text_.size();
      size_t stop = end;
      if (stop - pos_ > kMaxSentence) {
        stop = pos_ + kMaxSentence;
        const size_t sp = text_.rfind(' ', stop);
        if (sp != std::string::npos && sp > pos_ + kMaxSentence / 2) {
          stop = sp;
        } else {
          while (stop > pos_ && (static_cast<uint8_t>(text_[stop]) & 0xC0) == 0x80) --stop;
        }
      }
      std::string_view line(text_.data() + pos_, stop - pos_);
      pos_ = stop == end ? end + 1 : stop;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      value_.assign(line);
      ++sentences_;
      return;
    }
  }
  size_t bytes() const { return bytes_; }
  size_t sentences() const { return sentences_; }

 private:
  std::vector<std::string> files_;
  size_t file_ = 0, pos_ = 0, bytes_ = 0, sentences_ = 0;
  std::string text_, value_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec))
    throw Error(model_path + " is a directory; expected a sentencepiece .model file");
  return std::make_unique<SentencePieceTokenizer>(read_file_text(model_path), model_path);
}

void train_sentencepiece(const SentencePieceTrainOptions& o) {
  check(o.model_type == "unigram" || o.model_type == "bpe",
        "unknown sentencepiece model type \"" + o.model_type + "\" (expected unigram or bpe)");
  // 256 byte pieces + <unk> <s> </s> + at least one learned piece.
  check_field(o.vocab_size >= 260, "vocab_size", " ", o.vocab_size,
              " is too small: it must be at least 260 (256 byte tokens, <unk>, <s>, </s> and one "
              "learned piece)");
  check_field(o.vocab_size <= (1 << 20), "vocab_size", " ", o.vocab_size,
              " is too large (at most 1048576)");
  check_field(o.character_coverage > 0.0 && o.character_coverage <= 1.0, "character_coverage",
              " must be in (0, 1], got ", o.character_coverage);
  check_field(!o.out_dir.empty(), "out", ": no output directory given");
  const std::vector<std::string> files = collect_training_files(o.inputs);
  size_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec) throw Error("cannot read " + f + ": " + ec.message());
    total += size;
  }
  check(total > 0, "the training data is empty");

  StagedDirectory staged(o.out_dir);  // fails early if out_dir exists and is not empty
  const int threads = o.num_threads > 0
                          ? o.num_threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::unordered_map<std::string, std::string> args{
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "false"},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"max_sentence_length", std::to_string(kMaxSentence + 16)},
      {"num_threads", std::to_string(threads)},
      {"hard_vocab_limit", "true"},
      {"minloglevel", o.verbose ? "0" : "2"},
  };
  LineIterator lines(files);
  check(!lines.done(), "the training data has no text (only empty lines)");
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  if (!status.ok()) {
    // Drop the library's "file.cc(line) [condition] " prefix; keep its explanation.
    std::string why = status.message();
    const size_t cut = why.find("] ");
    if (why.rfind("./src/", 0) == 0 && cut != std::string::npos) why = why.substr(cut + 2);
    throw Error("sentencepiece training failed: " + why +
                " (vocab size " + std::to_string(o.vocab_size) + ", " + std::to_string(total) +
                " bytes of text)");
  }
  SentencePieceTokenizer tok(std::move(model), o.out_dir + "/tokenizer.model");
  tok.save(staged.path());
  staged.commit();
}

}  // namespace difftx
