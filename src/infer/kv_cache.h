#pragma once
// Incremental inference for one sequence: prefill the prompt in one batched pass, then one
// token at a time against a per-layer cache of keys (both maps for differential attention)
// and values (2d wide), in the canonical layout of kernels/attention.h.
#include <cstdint>
#include <vector>

#include "kernels/rope.h"
#include "model/params.h"
#include "model/transformer.h"

namespace difftx {

class KvSession {
 public:
  // Holds room for max_tokens positions (<= max_position_embeddings).
  KvSession(const Model& model, int64_t max_tokens, const RunOptions& opts = {});

  // Runs the prompt (appended at the current position) and returns the logits of its last
  // token [vocab].
  const std::vector<float>& prefill(const std::vector<int32_t>& tokens);
  // Appends one token and returns its logits [vocab].
  const std::vector<float>& decode(int32_t token);

  int64_t length() const { return len_; }
  int64_t capacity() const { return cap_; }
  size_t cache_bytes() const;

 private:
  void append_token(int32_t token);
  const Model& model_;
  RunOptions opts_;
  int64_t cap_, len_ = 0;
  RopeTable rope_;
  std::vector<std::vector<float>> K_, V_;  // per layer: [Pk, ncomp, cap, d], [Pk, cap, dv]
  std::vector<float> logits_;
  // scratch for one token
  std::vector<float> x_, xn_, qkv_, q_, o_, o2_, h_, gu_, act_, inv_;
};

}  // namespace difftx
