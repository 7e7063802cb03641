#include "analysis/attention_maps.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace difftx {

void run_reference_forward(const Model& model, const int32_t* tokens, int64_t B, int64_t T,
                           Activations& acts) {
  RunOptions opts;
  opts.attention = AttentionKernel::kReference;  // keeps the T x T maps
  forward(model, tokens, nullptr, B, T, acts, opts);
}

AttentionMaps extract_attention_maps(const Config& c, const Activations& acts, int64_t b) {
  check(acts.opts.attention == AttentionKernel::kReference,
        "attention maps need a forward pass with the reference attention kernel");
  check(b >= 0 && b < acts.B, "sequence index out of range");
  const int64_t T = acts.T, TT = T * T, P = c.query_heads(), nc = c.ncomp();
  AttentionMaps maps;
  maps.diff = c.is_diff();
  maps.T = T;
  maps.layers.resize(acts.layers.size());
  for (size_t l = 0; l < acts.layers.size(); ++l) {
    const LayerActivations& a = acts.layers[l];
    LayerMaps& m = maps.layers[l];
    m.heads = P;
    m.lambda = maps.diff ? a.lambda : 0.f;
    const float* probs = a.attn_saved.probs.data() + b * P * nc * TT;  // [Pq, ncomp, T, T]
    m.attn.resize(static_cast<size_t>(P * TT));
    if (maps.diff) {
      m.attn1.resize(m.attn.size());
      m.attn2.resize(m.attn.size());
    }
    for (int64_t h = 0; h < P; ++h) {
      const float* p1 = probs + h * nc * TT;
      float* out = m.attn.data() + h * TT;
      if (!maps.diff) {
        std::copy(p1, p1 + TT, out);
        continue;
      }
      const float* p2 = p1 + TT;
      std::copy(p1, p1 + TT, m.attn1.data() + h * TT);
      std::copy(p2, p2 + TT, m.attn2.data() + h * TT);
      for (int64_t k = 0; k < TT; ++k) out[k] = p1[k] - m.lambda * p2[k];
    }
  }
  return maps;
}

AttentionMaps compute_attention_maps(const Model& model, const std::vector<int32_t>& tokens) {
  Activations acts;
  const int64_t T = static_cast<int64_t>(tokens.size());
  run_reference_forward(model, tokens.data(), 1, T, acts);
  return extract_attention_maps(model.config, acts, 0);
}

void append_abs_attention_logits(const Config& c, const Activations& acts, int64_t layer,
                                 int64_t b, std::vector<float>& out) {
  const LayerActivations& a = acts.layers.at(static_cast<size_t>(layer));
  const int64_t T = acts.T, d = c.head_dim, nc = c.ncomp();
  const int64_t Pq = c.query_heads(), Pk = c.kv_groups(), rep = Pq / Pk;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  out.reserve(out.size() + static_cast<size_t>(Pq * nc * T * (T + 1) / 2));
  for (int64_t h = 0; h < Pq; ++h)
    for (int64_t cmp = 0; cmp < nc; ++cmp) {
      // Canonical layout: Q [B, Pq, ncomp, T, d], K [B, Pk, ncomp, T, d].
      const float* q = a.Q.data() + (((b * Pq + h) * nc + cmp) * T) * d;
      const float* k = a.K.data() + (((b * Pk + h / rep) * nc + cmp) * T) * d;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[i * d + e]) * k[j * d + e];
          out.push_back(static_cast<float>(std::abs(dot * scale)));
        }
    }
}

void append_abs_hidden_states(const Config& c, const Activations& acts, int64_t layer,
                              int64_t b, std::vector<float>& out) {
  const size_t next = static_cast<size_t>(layer) + 1;
  const std::vector<float>& x =
      next < acts.layers.size() ? acts.layers[next].x_in : acts.x_final;
  const int64_t n = acts.T * c.hidden_size;
  for (int64_t k = 0; k < n; ++k) out.push_back(std::abs(x[static_cast<size_t>(b * n + k)]));
}

}  // namespace difftx
