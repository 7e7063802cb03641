#include "model/layer.h"

#include <cstring>

#include "core/error.h"
#include "kernels/cached_attention.h"
#include "kernels/matmul.h"
#include "kernels/pair_combine.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "model/extensions.h"

namespace difftx {
namespace {

void resize(std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); }

// Appends this pass's canonical K and V (positions pos0[b]..) to the cache sequences rows[b].
void append_to_cache(const LayerPass& p, int64_t l, const float* K, const float* V) {
  const HeadGeometry& g = p.geom;
  const HeadGeometry& cg = p.cache->geom;
  float* Kc = p.cache->K[static_cast<size_t>(l)].data();
  float* Vc = p.cache->V[static_cast<size_t>(l)].data();
  for (int64_t b = 0; b < g.B; ++b) {
    const int64_t s = p.rows[b], t0 = p.pos0[b];
    for (int64_t grp = 0; grp < g.Pk; ++grp) {
      for (int64_t c = 0; c < g.ncomp; ++c)
        std::memcpy(Kc + cg.k_off(s, grp, c, t0), K + g.k_off(b, grp, c),
                    sizeof(float) * static_cast<size_t>(g.T * g.d));
      std::memcpy(Vc + cg.v_off(s, grp, t0), V + g.v_off(b, grp),
                  sizeof(float) * static_cast<size_t>(g.T * g.dv()));
    }
  }
}

// The explicit T x T maps: asked for, read by an extension, or with quantised logits.
bool uses_reference_kernel(const LayerPass& p) {
  return p.run.attention == AttentionKernel::kReference || p.explicit_maps ||
         p.run.attention_logit_bits > 0;
}

void attention(const LayerPass& p, int64_t l, LayerActivations& a) {
  const HeadGeometry& g = p.geom;
  if (p.cache) append_to_cache(p, l, a.K.data(), a.V.data());
  if (p.cache && p.continues) {
    cached_attention_forward(g, p.cache->geom, a.Q.data(), p.cache->K[l].data(),
                             p.cache->V[l].data(), p.rows, p.pos0, a.lambda, a.attn_pre.data());
  } else if (!uses_reference_kernel(p)) {
    flash_attention_forward(g, a.Q.data(), a.K.data(), a.V.data(), a.lambda, a.attn_pre.data(),
                            a.flash_saved);
  } else {
    attention_forward_reference(g, a.Q.data(), a.K.data(), a.V.data(), a.lambda,
                                a.attn_pre.data(), a.attn_saved, p.run.attention_logit_bits);
  }
  if (p.observer) {
    const bool maps = uses_reference_kernel(p) && !(p.cache && p.continues);
    p.observer->on_attention(
        l, AttentionView{g, a.Q.data(), a.K.data(), a.lambda,
                         maps ? a.attn_saved.probs.data() : nullptr,
                         a.token_lambda.empty() ? nullptr : a.token_lambda.data()});
  }
}

// What forward and backward of layer l both read: the model, its config, the layer's tensor
// offsets, the pass geometry, rows M = B*T, widths (hidden, MLP, fused q/k/v, the attention
// kernel's output, o_proj's input: equal except for V2, whose kernel output is twice as wide).
struct LayerShape {
  const Model& model;
  const Config& c;
  const LayerOffsets& L;
  const HeadGeometry& g;
  int64_t M, C, F, Wqkv, Wkernel, Wattn;
  Precision prec;
};

LayerShape shape_of(const LayerPass& p, int64_t l) {
  const Config& c = p.model.config;
  return {p.model, c, p.model.layout.layers[static_cast<size_t>(l)], p.geom,
          p.geom.B * p.geom.T, c.hidden_size, c.intermediate_size,
          c.q_width() + 2 * c.kv_width(), p.geom.Pq * p.geom.dv(), c.o_width(),
          p.run.precision};
}

}  // namespace

void layer_forward(const LayerPass& p, int64_t l, float* x, LayerActivations& a) {
  const auto [model, c, L, g, M, C, F, Wqkv, Wkernel, Wattn, prec] = shape_of(p, l);
  const float eps = static_cast<float>(c.rms_norm_eps);

  if (p.keep == Keep::kForBackward || c.ext.flow_gate) a.x_in.assign(x, x + M * C);
  resize(a.inv_rms1, M);
  resize(a.xn1, M * C);
  rmsnorm_forward(x, model.at(L.input_norm), 1.f, eps, a.xn1.data(), a.inv_rms1.data(), M, C);
  linear_forward(a.xn1.data(), model.at(L.qkv), p.qkv, M, Wqkv, C, prec);
  resize(a.Q, g.q_size());
  resize(a.K, g.k_size());
  resize(a.V, g.k_size());
  qkv_to_heads(g, p.map, p.rope, p.qkv, a.Q.data(), a.K.data(), a.V.data(), p.pos0);
  a.lambda = c.is_diff() ? lambda_forward(model.at(L.lambda_q1), model.at(L.lambda_k1),
                                          model.at(L.lambda_q2), model.at(L.lambda_k2),
                                          c.head_dim, static_cast<float>(c.lambda_init(l)))
                         : 0.f;
  if (c.is_diff_v2()) {  // lambda per token and head, from the same normed input as q, k, v
    const int64_t n = c.num_attention_heads;
    resize(a.token_lambda, M * n);
    linear_forward(a.xn1.data(), model.at(L.lambda_proj), a.token_lambda.data(), M, n, C, prec);
    pair_lambda_forward(a.token_lambda.data(), a.token_lambda.data(), M * n);
  }
  resize(a.attn_pre, M * Wkernel);
  attention(p, l, a);
  // The per-head norm (or, differential without it, only its (1 - lambda_init) scale).
  const float* o_in = a.attn_pre.data();
  const float scale = static_cast<float>(c.head_scale(l));
  if (c.head_norm()) {
    resize(a.inv_rms_h, M * g.Pq);
    resize(a.attn_out, M * Wattn);
    rmsnorm_forward(a.attn_pre.data(), L.groupnorm == kNone ? nullptr : model.at(L.groupnorm),
                    scale, eps, a.attn_out.data(), a.inv_rms_h.data(), M * g.Pq, g.dv());
    o_in = a.attn_out.data();
  } else if (c.is_diff()) {
    resize(a.attn_out, M * Wattn);
    for (int64_t i = 0; i < M * Wattn; ++i) a.attn_out[i] = scale * a.attn_pre[i];
    o_in = a.attn_out.data();
  } else if (c.is_diff_v2()) {
    resize(a.attn_out, M * Wattn);
    pair_combine_forward(a.attn_pre.data(), a.token_lambda.data(), a.attn_out.data(), M,
                         c.num_attention_heads, c.head_dim);
    o_in = a.attn_out.data();
  }
  resize(a.h, M * C);
  linear_forward(o_in, model.at(L.o_proj), a.h.data(), M, C, Wattn, prec);
  ext_attention_output_forward(p, l, a, a.h.data());
  for (int64_t i = 0; i < M * C; ++i) a.h[i] += x[i];
  resize(a.inv_rms2, M);
  resize(a.xn2, M * C);
  rmsnorm_forward(a.h.data(), model.at(L.post_norm), 1.f, eps, a.xn2.data(), a.inv_rms2.data(),
                  M, C);
  resize(a.gate_up, M * 2 * F);
  linear_forward(a.xn2.data(), model.at(L.gate_up), a.gate_up.data(), M, 2 * F, C, prec);
  resize(a.act, M * F);
  swiglu_forward(a.gate_up.data(), a.act.data(), M, F);
  linear_forward(a.act.data(), model.at(L.down), x, M, C, F, prec);
  for (int64_t i = 0; i < M * C; ++i) x[i] += a.h[i];
  ext_block_output_forward(p, l, a, x);
  if (p.observer) p.observer->on_layer_output(l, x, M, C);
}

void layer_backward(const LayerPass& p, int64_t l, const LayerActivations& a,
                    std::vector<float>& dx, LayerGradScratch& s, float* G) {
  const auto [model, c, L, g, M, C, F, Wqkv, Wkernel, Wattn, prec] = shape_of(p, l);
  check(!a.x_in.empty(), "backward needs a forward pass that kept its activations");
  resize(s.dxn, M * C);
  resize(s.dact, M * F);
  resize(s.dgu, M * 2 * F);
  resize(s.dattn_out, M * Wattn);
  resize(s.dQ, g.q_size());
  resize(s.dK, g.k_size());
  resize(s.dV, g.k_size());
  resize(s.dqkv, M * Wqkv);
  ext_block_output_backward(p, l, a, dx, s.ext, G);
  // out = h + down(swiglu(gate_up(norm2(h))))
  s.dh = dx;
  linear_backward(dx.data(), a.act.data(), model.at(L.down), s.dact.data(), G + L.down, M, C, F,
                  false, prec);
  swiglu_backward(a.gate_up.data(), s.dact.data(), s.dgu.data(), M, F);
  linear_backward(s.dgu.data(), a.xn2.data(), model.at(L.gate_up), s.dxn.data(), G + L.gate_up,
                  M, 2 * F, C, false, prec);
  rmsnorm_backward(s.dxn.data(), a.h.data(), model.at(L.post_norm), 1.f, a.inv_rms2.data(),
                   s.dh.data(), G + L.post_norm, M, C);
  // h = x_in + o_proj(attention(norm1(x_in)))
  dx = s.dh;
  const bool o_read_attn_out = c.head_norm() || !c.is_llama();
  const float* dy = ext_attention_output_backward(p, l, a, s.dh.data(), s.ext, G);
  linear_backward(dy, o_read_attn_out ? a.attn_out.data() : a.attn_pre.data(),
                  model.at(L.o_proj), s.dattn_out.data(), G + L.o_proj, M, C, Wattn, false, prec);
  const float* dattn_pre = s.dattn_out.data();
  const float scale = static_cast<float>(c.head_scale(l));
  if (c.head_norm()) {
    s.dpre.assign(static_cast<size_t>(M * Wattn), 0.f);
    rmsnorm_backward(s.dattn_out.data(), a.attn_pre.data(),
                     L.groupnorm == kNone ? nullptr : model.at(L.groupnorm), scale,
                     a.inv_rms_h.data(), s.dpre.data(),
                     L.groupnorm == kNone ? nullptr : G + L.groupnorm, M * g.Pq, g.dv());
    dattn_pre = s.dpre.data();
  } else if (c.is_diff()) {
    resize(s.dpre, M * Wattn);
    for (int64_t i = 0; i < M * Wattn; ++i) s.dpre[i] = scale * s.dattn_out[i];
    dattn_pre = s.dpre.data();
  } else if (c.is_diff_v2()) {
    resize(s.dpre, M * Wkernel);
    resize(s.dz, M * c.num_attention_heads);
    pair_combine_backward(s.dattn_out.data(), a.attn_pre.data(), a.token_lambda.data(),
                          s.dpre.data(), s.dz.data(), M, c.num_attention_heads, c.head_dim);
    dattn_pre = s.dpre.data();
  }
  float dlambda =
      !uses_reference_kernel(p)
          ? flash_attention_backward(g, a.Q.data(), a.K.data(), a.V.data(), a.lambda,
                                     a.flash_saved, dattn_pre, s.dQ.data(), s.dK.data(),
                                     s.dV.data())
          : attention_backward_reference(g, a.Q.data(), a.K.data(), a.V.data(), a.lambda,
                                         a.attn_saved, dattn_pre, s.dQ.data(), s.dK.data(),
                                         s.dV.data());
  dlambda += ext_maps_backward(p, a, s.ext, s.dQ.data(), s.dK.data());
  if (c.is_diff())
    lambda_backward(dlambda, model.at(L.lambda_q1), model.at(L.lambda_k1), model.at(L.lambda_q2),
                    model.at(L.lambda_k2), c.head_dim, G + L.lambda_q1, G + L.lambda_k1,
                    G + L.lambda_q2, G + L.lambda_k2);
  qkv_to_heads_backward(g, p.map, p.rope, s.dQ.data(), s.dK.data(), s.dV.data(), s.dqkv.data());
  linear_backward(s.dqkv.data(), a.xn1.data(), model.at(L.qkv), s.dxn.data(), G + L.qkv, M, Wqkv,
                  C, false, prec);
  if (c.is_diff_v2())
    linear_backward(s.dz.data(), a.xn1.data(), model.at(L.lambda_proj), s.dxn.data(),
                    G + L.lambda_proj, M, c.num_attention_heads, C, true, prec);
  rmsnorm_backward(s.dxn.data(), a.x_in.data(), model.at(L.input_norm), 1.f, a.inv_rms1.data(),
                   dx.data(), G + L.input_norm, M, C);
  ext_input_backward(p, s.ext, dx);
}

}  // namespace difftx
