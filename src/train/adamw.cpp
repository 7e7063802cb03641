#include "train/adamw.h"

#include <cmath>

namespace difftx {

AdamW::AdamW(const ParamLayout& layout, const AdamWConfig& cfg)
    : cfg_(cfg), m_(layout.total), v_(layout.total) {
  for (const auto& t : layout.tensors) {
    const bool decay = t.kind == ParamKind::kMatrix || cfg.decay_norms_lambdas_embeddings;
    spans_.push_back({t.offset, t.numel, decay});
  }
}

void AdamW::step(float* params, const float* grads, double lr) {
  ++t_;
  const float b1 = static_cast<float>(cfg_.beta1), b2 = static_cast<float>(cfg_.beta2);
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(cfg_.beta1, static_cast<double>(t_))));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(cfg_.beta2, static_cast<double>(t_))));
  const float eps = static_cast<float>(cfg_.eps), flr = static_cast<float>(lr);
  float* m = m_.data();
  float* v = v_.data();
  for (const Span& s : spans_) {
    const float decay = s.decay ? static_cast<float>(1.0 - lr * cfg_.weight_decay) : 1.f;
#pragma omp parallel for simd schedule(static)
    for (size_t i = s.offset; i < s.offset + s.numel; ++i) {
      const float g = grads[i];
      m[i] = b1 * m[i] + (1.f - b1) * g;
      v[i] = b2 * v[i] + (1.f - b2) * g * g;
      params[i] = params[i] * decay - flr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
    }
  }
}

}  // namespace difftx
