#pragma once
// Incremental inference for a batch of sequences of different lengths: each prompt is
// prefilled in one batched pass, then every active sequence advances one token per step in
// a single batched pass over the weights (the matrix products see one row per sequence),
// attending to its own cache of keys (both maps for differential attention) and values
// (2d wide), in the canonical layout of kernels/attention.h.
#include <cstdint>
#include <vector>

#include "kernels/rope.h"
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

  int64_t length(int64_t b = 0) const { return len_[b]; }
  int64_t capacity() const { return cap_; }

 private:
  float* k_seq(int64_t l, int64_t b) { return K_[l].data() + b * per_seq_k_; }
  float* v_seq(int64_t l, int64_t b) { return V_[l].data() + b * per_seq_v_; }
  const Model& model_;
  RunOptions opts_;
  int64_t cap_, batch_;
  int64_t per_seq_k_, per_seq_v_;  // floats per sequence: [Pk, ncomp, cap, d], [Pk, cap, dv]
  std::vector<int64_t> len_;
  RopeTable rope_;
  std::vector<std::vector<float>> K_, V_;  // per layer, all sequences
  std::vector<float> logits_, one_;
  std::vector<float> x_, xn_, qkv_, q_, o_, o2_, h_, gu_, act_, inv_;  // scratch, [n, ...]
};

}  // namespace difftx
