// tokenizer.json BPE model (see tokenizer_hf_bpe.h).
#include "io/tokenizer_hf_bpe.h"

#include <cstdio>
#include <mutex>
#include <queue>

#include "io/utf8_stream.h"

namespace difftx::hf {
namespace {

constexpr size_t kMaxCachedPiece = 256;
constexpr size_t kMaxCacheEntries = size_t{1} << 18;

constexpr std::string_view kMetaspace = "\u2581";

// Whether "\u2581" starts at s[i] and follows a character other than itself.
bool metaspace_after_other(std::string_view s, size_t i) {
  return i > 0 && s.compare(i, kMetaspace.size(), kMetaspace) == 0 &&
         !(i >= kMetaspace.size() && s.compare(i - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0);
}

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

BpeModel::BpeModel(const Json& model, const std::string& path) {
  const std::string type = get_string(model, "type", path, "BPE");
  if (type != "BPE") unsupported(path, type, "BPE");
  if (const Json* d = field(model, "dropout")) {
    check(d->is_number(), child(path, "dropout"), " must be a number or null");
    check(d->get<double>() == 0.0, child(path, "dropout"),
          " is not supported (BPE dropout makes encoding random); set it to null");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    check(get_string(model, key, path, "").empty(), child(path, key),
          " is not supported by difftx (only byte-level and sentencepiece-style BPE)");
  unk_token_ = get_string(model, "unk_token", path, "");
  fuse_unk_ = get_bool(model, "fuse_unk", path, false);
  byte_fallback_ = get_bool(model, "byte_fallback", path, false);
  ignore_merges_ = get_bool(model, "ignore_merges", path, false);

  const Json* vocab = field(model, "vocab");
  const std::string vpath = child(path, "vocab");
  check(vocab && vocab->is_object(), vpath, " must be an object (token -> id)");
  int64_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    check(it->is_number_integer(), vpath, "[\"", it.key(), "\"] must be an integer id");
    const int64_t id = it->get<int64_t>();
    check(id >= 0 && id < (int64_t{1} << 30), vpath, "[\"", it.key(), "\"] = ", id,
          " is out of range [0, 2^30)");
    max_id = std::max(max_id, id);
  }
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  has_id_.assign(id_to_token_.size(), 0);
  vocab_.reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    const auto id = static_cast<int32_t>(it->get<int64_t>());
    check(!has_id_[id], vpath, ": tokens \"", id_to_token_[id], "\" and \"", it.key(),
          "\" share the id ", id);
    has_id_[id] = 1;
    id_to_token_[id] = it.key();
    vocab_.emplace(it.key(), id);
  }
  cut_before_metaspace_ = vocab_.count(std::string(kMetaspace)) > 0;
  for (const auto& [token, id] : vocab_)
    for (size_t i = token.find(kMetaspace); cut_before_metaspace_ && i != std::string::npos;
         i = token.find(kMetaspace, i + 1))
      if (metaspace_after_other(token, i)) cut_before_metaspace_ = false;
  if (!unk_token_.empty()) unk_id_ = token_id(unk_token_);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[b] = token_id(name);
  }

  const Json* merges = field(model, "merges");
  const std::string mpath = child(path, "merges");
  if (!merges) return;  // a BPE without merges: characters only
  check(merges->is_array(), mpath, " must be a list");
  merges_.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    std::string a, b;
    if (m.is_string()) {  // "left right"
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      check(sp != std::string::npos && sp > 0 && sp + 1 < s.size() &&
                s.find(' ', sp + 1) == std::string::npos,
            element(mpath, i), " = \"", s, "\" must be two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      throw Error(element(mpath, i) + " must be \"left right\" or [\"left\", \"right\"]");
    }
    const int32_t ia = token_id(a), ib = token_id(b), im = token_id(a + b);
    check(ia >= 0, element(mpath, i), " names \"", a, "\", which is not a token of ", vpath);
    check(ib >= 0, element(mpath, i), " names \"", b, "\", which is not a token of ", vpath);
    check(im >= 0, element(mpath, i), ": the merge result \"", a + b, "\" is not a token of ", vpath);
    // The first occurrence of a pair sets its rank (later duplicates never apply).
    merges_.emplace(pair_key(ia, ib), Merge{static_cast<int32_t>(i), im});
  }
}

int32_t BpeModel::token_id(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::token(int32_t id) const {
  if (id < 0 || id >= size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const int32_t id = token_id(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (!cut_before_metaspace_) return encode_cached(piece, out);
  size_t start = 0;
  for (size_t i = piece.find(kMetaspace, 1); i != std::string_view::npos;
       i = piece.find(kMetaspace, i + 1)) {
    if (!metaspace_after_other(piece, i)) continue;
    encode_cached(piece.substr(start, i - start), out);
    start = i;
  }
  encode_cached(piece.substr(start), out);
}

void BpeModel::encode_cached(std::string_view piece, std::vector<int32_t>& out) const {
  const bool cacheable = piece.size() < kMaxCachedPiece;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    const auto it = cache_.find(std::string(piece));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge(piece, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(piece), std::move(ids));
  }
}

void BpeModel::merge(std::string_view piece, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;           // -1: a character that is not a token
    uint32_t begin, len;  // bytes of piece
    int32_t prev, next;
  };
  std::vector<Symbol> sym;
  sym.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    size_t n = utf8::sequence_length(piece, i);
    if (n == 0) n = 1;
    const auto k = static_cast<int32_t>(sym.size());
    sym.push_back({token_id(piece.substr(i, n)), static_cast<uint32_t>(i), static_cast<uint32_t>(n),
                   k - 1, -1});
    if (k > 0) sym[k - 1].next = k;
    i += n;
  }
  struct Candidate {
    int32_t rank, pos, id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = sym[left].next;
    if (right < 0 || sym[left].id < 0 || sym[right].id < 0) return;
    const auto it = merges_.find(pair_key(sym[left].id, sym[right].id));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.id});
  };
  for (int32_t k = 0; k + 1 < static_cast<int32_t>(sym.size()); ++k) consider(k);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = sym[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    const Symbol& right = sym[left.next];
    if (left.id < 0 || right.id < 0) continue;
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.id != top.id || it->second.rank != top.rank)
      continue;  // stale: the pair at pos has changed
    const int32_t gone = left.next;
    left.id = top.id;
    left.len += right.len;
    left.next = right.next;
    sym[gone].len = 0;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  for (int32_t k = sym.empty() ? -1 : 0; k >= 0; k = sym[k].next) {
    const Symbol& s = sym[k];
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    bool bytes_ok = byte_fallback_;
    for (uint32_t i = 0; bytes_ok && i < s.len; ++i)
      bytes_ok = byte_ids_[static_cast<uint8_t>(piece[s.begin + i])] >= 0;
    if (bytes_ok) {
      for (uint32_t i = 0; i < s.len; ++i)
        out.push_back(byte_ids_[static_cast<uint8_t>(piece[s.begin + i])]);
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);
    }
  }
}

}  // namespace difftx::hf
