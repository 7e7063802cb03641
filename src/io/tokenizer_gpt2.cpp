// GPT-2's byte-level BPE (encoder.json + vocab.bpe), following OpenAI's encoder.py:
// pre-tokenise with GPT-2's pattern, map each piece's bytes to symbols, apply merges by rank.
// Internally tokens are byte strings (encoder.json's keys are mapped back through GPT-2's
// bytes_to_unicode table), so the algorithm works on bytes and invalid UTF-8 stays exact.
#include <algorithm>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "core/files.h"
#include "io/tokenizer.h"
#include "io/utf8_stream.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

using utf8::CharClass;

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in increasing byte order. Returns, for code points below 0x200, the byte (or -1).
std::vector<int> unicode_to_byte_table() {
  std::vector<int> table(0x200, -1);
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (printable(b))
      table[b] = b;
    else
      table[256 + n++] = b;
  }
  return table;
}

// The bytes a vocabulary string stands for; false when it has a character outside the
// 256-symbol alphabet.
bool symbols_to_bytes(std::string_view s, const std::vector<int>& table, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = 0;
    const size_t n = utf8::sequence_length(s, i, &cp);
    if (n == 0 || cp >= table.size() || table[cp] < 0) return false;
    out.push_back(static_cast<char>(table[cp]));
    i += n;
  }
  return !out.empty();
}

struct Unit {
  size_t len;
  CharClass cls;
};
// One pre-tokenisation unit at s[i]: a code point, or a single byte that is not valid UTF-8
// (classed like U+FFFD, i.e. neither letter, number nor space).
inline Unit unit_at(std::string_view s, size_t i) {
  const auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) return {1, utf8::classify(b)};
  char32_t cp = 0;
  const size_t n = utf8::sequence_length(s, i, &cp);
  if (n == 0) return {1, CharClass::kOther};
  return {n, utf8::classify(cp)};
}

// End of the match of GPT-2's pattern at position i (alternatives tried in order):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t match_end(std::string_view s, size_t i) {
  const size_t n = s.size();
  if (s[i] == '\'' && i + 1 < n) {
    const char c = s[i + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
    if (i + 2 < n) {
      const std::string_view two = s.substr(i + 1, 2);
      if (two == "re" || two == "ve" || two == "ll") return i + 3;
    }
  }
  const Unit first = unit_at(s, i);
  size_t run_start = i;
  CharClass cls = first.cls;
  if (s[i] == ' ' && i + 1 < n) {
    const Unit next = unit_at(s, i + 1);
    if (next.cls != CharClass::kSpace) {  // " ?X+" with the optional space
      run_start = i + 1;
      cls = next.cls;
    }
  }
  if (cls != CharClass::kSpace) {
    size_t j = run_start;
    while (j < n) {
      const Unit u = unit_at(s, j);
      if (u.cls != cls) break;
      j += u.len;
    }
    return j;
  }
  // A run of white space: \s+(?!\S) takes all of it at the end of the text, or all but its
  // last character when more than one is followed by something else; otherwise \s+.
  size_t j = i, last = i;
  while (j < n) {
    const Unit u = unit_at(s, j);
    if (u.cls != CharClass::kSpace) break;
    last = j;
    j += u.len;
  }
  if (j == n) return j;
  return last > i ? last : j;
}

class Gpt2Tokenizer final : public Tokenizer {
 public:
  Gpt2Tokenizer(std::string encoder_json, std::string vocab_bpe, const std::string& enc_path,
                const std::string& bpe_path)
      : encoder_json_(std::move(encoder_json)), vocab_bpe_(std::move(vocab_bpe)) {
    const std::vector<int> table = unicode_to_byte_table();
    load_encoder(enc_path, table);
    load_merges(bpe_path, table);
  }

  std::string kind() const override { return "gpt2"; }
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_bytes_.size()); }
  int32_t eos_id() const override { return eos_; }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    size_t i = 0;
    while (i < text.size()) {
      const size_t j = match_end(text, i);
      encode_piece(text.substr(i, j - i), ids);
      i = j;
    }
    return ids;
  }

  void decode_append(int32_t id, DecodeState& state, std::string& out) const override {
    if (id < 0 || id >= vocab_size())
      throw Error("token id " + std::to_string(id) +
                  " is out of range for the gpt2 tokenizer (ids 0.." +
                  std::to_string(vocab_size() - 1) + ")");
    out += id_to_bytes_[static_cast<size_t>(id)];
    state.any_output = true;
  }

  std::vector<SavedFile> files_to_save() const override {
    return {{"encoder", "encoder.json", encoder_json_}, {"merges", "vocab.bpe", vocab_bpe_}};
  }

 private:
  struct Merge {
    int32_t rank, merged;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void load_encoder(const std::string& path, const std::vector<int>& table) {
    const auto j = nlohmann::json::parse(encoder_json_, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || j.empty())
      throw Error(path + " is not a GPT-2 encoder.json (expected a JSON object token -> id)");
    const size_t n = j.size();
    id_to_bytes_.assign(n, std::string());
    std::vector<bool> seen(n, false);
    std::string bytes;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_number_integer())
        throw Error(path + ": the id of token \"" + it.key() + "\" is not an integer");
      const int64_t id = it.value().get<int64_t>();
      if (id < 0 || id >= static_cast<int64_t>(n) || seen[static_cast<size_t>(id)])
        throw Error(path + ": token ids must be 0.." + std::to_string(n - 1) +
                    ", each once (token \"" + it.key() + "\" has id " + std::to_string(id) + ")");
      if (!symbols_to_bytes(it.key(), table, bytes))
        throw Error(path + ": token \"" + it.key() +
                    "\" has characters outside GPT-2's byte alphabet");
      seen[static_cast<size_t>(id)] = true;
      id_to_bytes_[static_cast<size_t>(id)] = bytes;
      if (!bytes_to_id_.emplace(bytes, static_cast<int32_t>(id)).second)
        throw Error(path + ": two tokens stand for the same bytes (\"" + it.key() + "\")");
    }
    for (int b = 0; b < 256; ++b) {
      const auto it = bytes_to_id_.find(std::string(1, static_cast<char>(b)));
      if (it == bytes_to_id_.end())
        throw Error(path + ": the single-byte token for byte " + std::to_string(b) +
                    " is missing");
      byte_id_[b] = it->second;
    }
    const auto eos = j.find("<|endoftext|>");
    eos_ = eos != j.end() ? static_cast<int32_t>(eos->get<int64_t>()) : -1;
  }

  void load_merges(const std::string& path, const std::vector<int>& table) {
    std::string_view text = vocab_bpe_;
    size_t line_no = 0, pos = 0;
    int32_t rank = 0;
    std::string a, b;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.substr(0, 8) == "#version")) continue;
      const size_t sp = line.find(' ');
      const auto where = [&] { return path + " line " + std::to_string(line_no) + ": "; };
      if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size() ||
          line.find(' ', sp + 1) != std::string_view::npos)
        throw Error(where() + "expected a merge \"A B\", got \"" + std::string(line) + "\"");
      if (!symbols_to_bytes(line.substr(0, sp), table, a) ||
          !symbols_to_bytes(line.substr(sp + 1), table, b))
        throw Error(where() + "characters outside GPT-2's byte alphabet");
      const auto ia = bytes_to_id_.find(a), ib = bytes_to_id_.find(b),
                 im = bytes_to_id_.find(a + b);
      if (ia == bytes_to_id_.end() || ib == bytes_to_id_.end() || im == bytes_to_id_.end())
        throw Error(where() + "the merge \"" + std::string(line) +
                    "\" uses or makes a token that encoder.json does not have");
      // As encoder.py's dict(zip(merges, ranks)): a repeated merge keeps its last rank.
      merges_[pair_key(ia->second, ib->second)] = Merge{rank++, im->second};
    }
    if (merges_.empty()) throw Error(path + " holds no merges");
    bytes_to_id_.clear();  // only needed while loading
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    if (piece.size() == 1) {
      out.push_back(byte_id_[static_cast<uint8_t>(piece[0])]);
      return;
    }
    if (piece.size() > kCacheMaxPiece) {  // rare (long runs): not worth keeping
      const std::vector<int32_t> ids = bpe(piece);
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
    const std::string key(piece);
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      const auto it = cache_.find(key);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> ids = bpe(piece);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheLimit) cache_.clear();
    cache_.emplace(key, std::move(ids));
  }

  // encoder.py's bpe(): repeatedly merge every occurrence (left to right, not overlapping) of
  // the adjacent pair with the lowest rank. A heap of candidate pairs keeps this O(n log n) on
  // long pieces; all candidates of one rank are applied together, in position order, exactly
  // as the reference merges one bigram everywhere before looking for the next.
  std::vector<int32_t> bpe(std::string_view piece) const {
    const int n = static_cast<int>(piece.size());
    std::vector<int32_t> sym(n);
    std::vector<int> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (int i = 0; i < n; ++i) {
      sym[i] = byte_id_[static_cast<uint8_t>(piece[i])];
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    struct Cand {
      int32_t rank, pos, a, b, merged;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto consider = [&](int p) {
      if (p < 0) return;
      const int q = next[p];
      if (q < 0) return;
      const auto it = merges_.find(pair_key(sym[p], sym[q]));
      if (it != merges_.end()) heap.push({it->second.rank, p, sym[p], sym[q], it->second.merged});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    std::vector<Cand> batch;
    while (!heap.empty()) {
      const int32_t rank = heap.top().rank;
      batch.clear();
      while (!heap.empty() && heap.top().rank == rank) {
        batch.push_back(heap.top());
        heap.pop();
      }
      for (const Cand& c : batch) {  // in position order
        const int p = c.pos;
        if (!alive[p] || sym[p] != c.a) continue;
        const int q = next[p];
        if (q < 0 || sym[q] != c.b) continue;
        sym[p] = c.merged;
        alive[q] = false;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0) consider(prev[p]);
        consider(p);
      }
    }
    std::vector<int32_t> ids;
    for (int p = 0; p >= 0; p = next[p]) ids.push_back(sym[p]);
    return ids;
  }

  static constexpr size_t kCacheLimit = 1 << 18;  // pieces remembered, then forgotten at once
  static constexpr size_t kCacheMaxPiece = 64;     // bytes

  std::string encoder_json_, vocab_bpe_;
  std::vector<std::string> id_to_bytes_;
  std::unordered_map<std::string, int32_t> bytes_to_id_;
  int32_t byte_id_[256] = {};
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t eos_ = -1;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& encoder_json_path,
                                               const std::string& vocab_bpe_path) {
  std::string enc = read_file_text(encoder_json_path);
  std::string bpe = read_file_text(vocab_bpe_path);
  return std::make_unique<Gpt2Tokenizer>(std::move(enc), std::move(bpe), encoder_json_path,
                                         vocab_bpe_path);
}

std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& dir) {
  return load_gpt2_tokenizer((fs::path(dir) / "encoder.json").string(),
                             (fs::path(dir) / "vocab.bpe").string());
}

}  // namespace difftx
