#pragma once
// AdamW (decoupled weight decay) as one loop over the flat parameter and gradient buffers.
// By default no decay on norm weights, lambda vectors and embeddings.
#include <cstdint>
#include <vector>

#include "core/buffer.h"
#include "model/params.h"

namespace difftx {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  bool decay_norms_lambdas_embeddings = false;
};

class AdamW {
 public:
  AdamW(const ParamLayout& layout, const AdamWConfig& cfg);
  // One update with learning rate lr from gradients in the model's layout.
  void step(float* params, const float* grads, double lr);
  int64_t steps() const { return t_; }
  AlignedFloats& m() { return m_; }
  AlignedFloats& v() { return v_; }
  const AlignedFloats& m() const { return m_; }
  const AlignedFloats& v() const { return v_; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  struct Span {
    size_t offset, numel;
    bool decay;
  };
  std::vector<Span> spans_;
  AdamWConfig cfg_;
  AlignedFloats m_, v_;
  int64_t t_ = 0;
};

}  // namespace difftx
