#pragma once
// Incremental inference for a batch of sequences of different lengths, on the model's one
// layer recipe (model/transformer.h): each prompt is prefilled in one pass that keeps no
// activations, computes only its last logits and fills the KV cache; then every active
// sequence advances one token per step in a single batched pass over the weights (the matrix
// products see one row per sequence), attending to its own cache.
//
// A model with an extension that reads the attention mass a token receives (ext_token_enhancer,
// ext_noise_reduction; docs/variants.md) cannot be cached: that mass, and so every later
// layer's keys and values of the token, change with each new query. Such a session keeps each
// sequence's tokens instead and computes every step by a full pass over the sequence (the mass
// from all queries seen so far), with the same interface.
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/params.h"
#include "model/transformer.h"

namespace difftx {

class KvSession {
 public:
  // Room for `batch` sequences of max_tokens positions each (<= max_position_embeddings).
  KvSession(const Model& model, int64_t max_tokens, const RunOptions& opts = {},
            int64_t batch = 1);

  // Starts sequence b afresh with `tokens`; returns the logits of its last token [vocab].
  const float* prefill(int64_t b, const std::vector<int32_t>& tokens);
  // Appends tokens[i] to sequence rows[i] for every i, in one pass; returns logits
  // [rows.size(), vocab].
  const std::vector<float>& decode(const std::vector<int64_t>& rows,
                                   const std::vector<int32_t>& tokens);

  // Single-sequence conveniences (sequence 0).
  const std::vector<float>& prefill(const std::vector<int32_t>& tokens);
  const std::vector<float>& decode(int32_t token);

  int64_t length(int64_t b = 0) const { return cache_.len[static_cast<size_t>(b)]; }
  int64_t capacity() const { return cache_.capacity(); }

 private:
  const Model& model_;
  RunOptions opts_;
  KvCache cache_;
  Activations acts_;  // scratch of one layer, reused by every pass
  // Recomputing sessions (see above): the tokens of each sequence, the logits of a decode step.
  bool recompute_ = false;
  std::vector<std::vector<int32_t>> history_;
  std::vector<float> decoded_;
  void recompute_last(int64_t b);  // logits of sequence b's last token into acts_.logits
};

}  // namespace difftx
