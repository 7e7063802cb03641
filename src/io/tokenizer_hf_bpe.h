#pragma once
// The BPE model of a tokenizer.json: vocab (token -> id), merges by rank, and the options
// unk_token, fuse_unk, byte_fallback and ignore_merges. A piece is split into characters
// (a byte that is not valid UTF-8 is a character of its own), merged pair by pair in rank
// order (lowest rank first, leftmost first among equal ranks: a priority queue over a linked
// list of symbols), then characters that are not tokens become <0xNN> byte tokens
// (byte_fallback, when all their bytes are tokens) or unk_token, or are dropped. Results for
// pieces shorter than 256 bytes are cached. Thread-safe.
//
// Sentencepiece-style files (Llama-2) have no pre-tokenizer: a whole text is one piece. When no
// token holds "▁" after another character, no merge can join the symbols on both sides
// of such a "▁", so the piece is cut there first and the cuts are merged (and cached)
// apart: the same ids, at the speed of word-level BPE.
//
// Errors at load: a merge naming a token not in vocab (or whose concatenation is not in vocab),
// ids that are negative or shared, dropout, continuing_subword_prefix or end_of_word_suffix
// (not supported).
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tokenizer_hf_json.h"

namespace difftx::hf {

class BpeModel {
 public:
  BpeModel(const Json& model, const std::string& path);

  // Appends the ids of one pre-tokenized piece.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  // -1 when absent.
  int32_t token_id(std::string_view token) const;
  int32_t unk_id() const { return unk_id_; }
  // unk_token as the file names it ("" when null); set_unk_id resolves it when it is an added
  // token rather than a vocab entry.
  const std::string& unk_token() const { return unk_token_; }
  void set_unk_id(int32_t id) { unk_id_ = id; }
  bool fuse_unk() const { return fuse_unk_; }
  // Largest id + 1.
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }
  // The token string of id, or nullptr for an id the vocab does not have.
  const std::string* token(int32_t id) const;

 private:
  void merge(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_cached(std::string_view piece, std::vector<int32_t>& out) const;

  struct Merge {
    int32_t rank, id;
  };
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, result
  int32_t byte_ids_[256];                       // <0xNN> ids (-1 when absent)
  std::string unk_token_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  bool cut_before_metaspace_ = false;  // see above

  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace difftx::hf
