#include "analysis/attention_maps.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace difftx {

ForwardRecord::Layer& ForwardRecord::at(int64_t layer) {
  if (static_cast<int64_t>(layers.size()) <= layer) layers.resize(static_cast<size_t>(layer) + 1);
  return layers[static_cast<size_t>(layer)];
}

void ForwardRecord::on_attention(int64_t layer, const AttentionView& v) {
  check(v.probs != nullptr, "attention maps need a forward pass with the reference attention kernel");
  geom = v.geom;
  Layer& L = at(layer);
  L.lambda = v.lambda;
  if (v.token_lambda)
    L.token_lambda.assign(v.token_lambda, v.token_lambda + v.geom.B * v.geom.T * v.geom.Pq / 2);
  else
    L.token_lambda.clear();
  const int64_t maps = v.geom.B * v.geom.Pq * v.geom.ncomp, TT = v.geom.T * v.geom.T;
  L.probs.assign(v.probs, v.probs + maps * TT);
  if (keep_activations_) {
    L.Q.assign(v.Q, v.Q + v.geom.q_size());
    L.K.assign(v.K, v.K + v.geom.k_size());
  }
}

void ForwardRecord::on_layer_output(int64_t layer, const float* x, int64_t rows, int64_t hidden) {
  if (keep_activations_) at(layer).hidden.assign(x, x + rows * hidden);
}

void run_reference_forward(const Model& model, const int32_t* tokens, int64_t B, int64_t T,
                           ForwardRecord& record) {
  RunOptions opts;
  opts.attention = AttentionKernel::kReference;  // the kernel that forms the T x T maps
  PassOptions pass;
  pass.keep = Keep::kNothing;
  pass.logits = LogitRows::kSkip;
  pass.observer = &record;
  record.layers.clear();
  Activations acts;
  forward(model, tokens, nullptr, B, T, acts, opts, pass);
}

AttentionMaps extract_attention_maps(const Config& c, const ForwardRecord& rec, int64_t b) {
  check(rec.layers.size() == static_cast<size_t>(c.num_hidden_layers) &&
            !rec.layers.empty() && !rec.layers[0].probs.empty(),
        "attention maps need a recorded forward pass with the reference attention kernel");
  const HeadGeometry& g = rec.geom;
  check(b >= 0 && b < g.B, "sequence index ", b, " out of range");
  const int64_t T = g.T, TT = T * T, P = c.effective_heads();
  const bool v2 = c.is_diff_v2();
  AttentionMaps maps;
  maps.model_type = c.model_type;
  maps.diff = !c.is_llama();
  maps.T = T;
  maps.layers.resize(rec.layers.size());
  for (size_t l = 0; l < rec.layers.size(); ++l) {
    const ForwardRecord::Layer& r = rec.layers[l];
    LayerMaps& m = maps.layers[l];
    m.heads = P;
    m.lambda = c.is_diff() ? r.lambda : 0.f;
    m.attn.resize(static_cast<size_t>(P * TT));
    if (maps.diff) {
      m.attn1.resize(m.attn.size());
      m.attn2.resize(m.attn.size());
    }
    if (v2) {
      check(r.token_lambda.size() == static_cast<size_t>(g.B * T * P),
            "a DIFF V2 pass must record the per-token lambda");
      m.token_lambda.resize(static_cast<size_t>(P * T));
      double sum = 0;
      for (int64_t h = 0; h < P; ++h)
        for (int64_t t = 0; t < T; ++t) {
          const float lam = r.token_lambda[static_cast<size_t>((b * T + t) * P + h)];
          m.token_lambda[static_cast<size_t>(h * T + t)] = lam;
          sum += lam;
        }
      m.lambda = static_cast<float>(sum / static_cast<double>(P * T));
    }
    for (int64_t h = 0; h < P; ++h) {
      // V2: the pair of sub-heads (2h, 2h+1); V1: the two maps of head h.
      const float* p1 = r.probs.data() + (v2 ? g.map_index(b, 2 * h, 0) : g.map_index(b, h, 0)) * TT;
      float* out = m.attn.data() + h * TT;
      if (!maps.diff) {
        std::copy(p1, p1 + TT, out);
        continue;
      }
      const float* p2 =
          r.probs.data() + (v2 ? g.map_index(b, 2 * h + 1, 0) : g.map_index(b, h, 1)) * TT;
      std::copy(p1, p1 + TT, m.attn1.data() + h * TT);
      std::copy(p2, p2 + TT, m.attn2.data() + h * TT);
      for (int64_t i = 0; i < T; ++i) {
        const float lam = v2 ? m.token_lambda[static_cast<size_t>(h * T + i)] : m.lambda;
        for (int64_t j = 0; j < T; ++j) out[i * T + j] = p1[i * T + j] - lam * p2[i * T + j];
      }
    }
  }
  return maps;
}

AttentionMaps compute_attention_maps(const Model& model, const std::vector<int32_t>& tokens) {
  ForwardRecord rec(false);
  run_reference_forward(model, tokens.data(), 1, static_cast<int64_t>(tokens.size()), rec);
  return extract_attention_maps(model.config, rec, 0);
}

namespace {
const ForwardRecord::Layer& recorded_layer(const ForwardRecord& rec, int64_t layer,
                                           bool need_qk) {
  check(layer >= 0 && layer < static_cast<int64_t>(rec.layers.size()), "layer ", layer,
        " was not recorded");
  const ForwardRecord::Layer& L = rec.layers[static_cast<size_t>(layer)];
  check(!(need_qk ? L.Q : L.hidden).empty(), "the forward pass was recorded without activations");
  return L;
}
}  // namespace

void append_abs_attention_logits(const Config& /*config*/, const ForwardRecord& rec, int64_t layer,
                                 int64_t b, std::vector<float>& out) {
  const ForwardRecord::Layer& L = recorded_layer(rec, layer, true);
  const HeadGeometry& g = rec.geom;
  const int64_t T = g.T, d = g.d, nc = g.ncomp;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  out.reserve(out.size() + static_cast<size_t>(g.Pq * nc * T * (T + 1) / 2));
  for (int64_t h = 0; h < g.Pq; ++h)
    for (int64_t cmp = 0; cmp < nc; ++cmp) {
      const float* q = L.Q.data() + g.q_off(b, h, cmp);
      const float* k = L.K.data() + g.k_off(b, g.group_of(h), cmp);
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[i * d + e]) * k[j * d + e];
          out.push_back(static_cast<float>(std::abs(dot * scale)));
        }
    }
}

void append_abs_hidden_states(const Config& c, const ForwardRecord& rec, int64_t layer, int64_t b,
                              std::vector<float>& out) {
  const ForwardRecord::Layer& L = recorded_layer(rec, layer, false);
  const int64_t n = rec.geom.T * c.hidden_size;
  for (int64_t k = 0; k < n; ++k) out.push_back(std::abs(L.hidden[static_cast<size_t>(b * n + k)]));
}

}  // namespace difftx
