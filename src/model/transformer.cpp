#include "model/transformer.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"

namespace difftx {
namespace {

HeadGeometry attn_dims(const Config& c, int64_t B, int64_t T) {
  HeadGeometry a;
  a.B = B;
  a.T = T;
  a.Pq = c.query_heads();
  a.Pk = c.kv_groups();
  a.ncomp = c.ncomp();
  a.d = c.head_dim;
  return a;
}

void resize(std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); }

}  // namespace

std::vector<int32_t> next_token_targets(const std::vector<int32_t>& tokens, int64_t B,
                                        int64_t T) {
  std::vector<int32_t> targets(tokens.size(), -1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) targets[b * T + t] = tokens[b * T + t + 1];
  return targets;
}

double forward(const Model& model, const int32_t* tokens, const int32_t* targets, int64_t B,
               int64_t T, Activations& A, const RunOptions& opts) {
  A.opts = opts;
  const Config& c = model.config;
  const ParamLayout& P = model.layout;
  check(B > 0 && T > 0, "empty batch: need at least one token");
  check(T <= c.max_position_embeddings,
        "sequence of " + std::to_string(T) + " tokens exceeds max_position_embeddings (" +
            std::to_string(c.max_position_embeddings) + ")");
  const int64_t M = B * T, C = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  for (int64_t m = 0; m < M; ++m) {
    check(tokens[m] >= 0 && tokens[m] < V, "token id " + std::to_string(tokens[m]) +
                                               " at position " + std::to_string(m) +
                                               " is out of range [0, " + std::to_string(V) + ")");
    if (targets) check(targets[m] < V, "target id " + std::to_string(targets[m]) + " out of range");
  }
  const HeadGeometry ad = attn_dims(c, B, T);
  const int64_t Wqkv = c.q_width() + 2 * c.kv_width(), Wattn = ad.Pq * ad.dv();
  const HeadMapping map{c.diff_split_layout};
  if (A.rope.T != T || A.rope.half != c.head_dim / 2)
    A.rope = make_rope_table(T, c.head_dim, c.rope_theta, c.rope_interleaved);
  A.B = B;
  A.T = T;
  A.tokens.assign(tokens, tokens + M);
  A.targets = targets ? std::vector<int32_t>(targets, targets + M) : std::vector<int32_t>(M, -1);
  A.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  const float eps = static_cast<float>(c.rms_norm_eps);

  std::vector<float> x(static_cast<size_t>(M * C));
  std::vector<float> qkv(static_cast<size_t>(M * Wqkv));  // scratch: backward needs only Q, K, V
  embedding_forward(model.at(P.embed), tokens, x.data(), M, C);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerOffsets& L = P.layers[l];
    LayerActivations& a = A.layers[l];
    a.x_in = x;
    resize(a.inv_rms1, M);
    resize(a.xn1, M * C);
    rmsnorm_forward(x.data(), model.at(L.input_norm), 1.f, eps, a.xn1.data(), a.inv_rms1.data(),
                    M, C);
    linear_forward(a.xn1.data(), model.at(L.qkv), qkv.data(), M, Wqkv, C, A.opts.precision);
    resize(a.Q, M * c.q_width());
    resize(a.K, M * c.kv_width());
    resize(a.V, M * c.kv_width());
    qkv_to_heads(ad, map, A.rope, qkv.data(), a.Q.data(), a.K.data(), a.V.data());
    if (c.is_diff())
      a.lambda = lambda_forward(model.at(L.lambda_q1), model.at(L.lambda_k1),
                                model.at(L.lambda_q2), model.at(L.lambda_k2), c.head_dim,
                                static_cast<float>(c.lambda_init(l)));
    resize(a.attn_pre, M * Wattn);
    if (opts.attention == AttentionKernel::kFlash)
      flash_attention_forward(ad, a.Q.data(), a.K.data(), a.V.data(), a.lambda,
                              a.attn_pre.data(), a.flash_saved);
    else
      attention_forward_reference(ad, a.Q.data(), a.K.data(), a.V.data(), a.lambda,
                                  a.attn_pre.data(), a.attn_saved);
    if (c.is_diff()) {
      resize(a.inv_rms_h, M * ad.Pq);
      resize(a.attn_out, M * Wattn);
      rmsnorm_forward(a.attn_pre.data(),
                      L.groupnorm == kNone ? nullptr : model.at(L.groupnorm),
                      static_cast<float>(1.0 - c.lambda_init(l)), eps, a.attn_out.data(),
                      a.inv_rms_h.data(), M * ad.Pq, ad.dv());
    }
    const float* o_in = c.is_diff() ? a.attn_out.data() : a.attn_pre.data();
    resize(a.h, M * C);
    linear_forward(o_in, model.at(L.o_proj), a.h.data(), M, C, Wattn, A.opts.precision);
    for (int64_t i = 0; i < M * C; ++i) a.h[i] += x[i];
    resize(a.inv_rms2, M);
    resize(a.xn2, M * C);
    rmsnorm_forward(a.h.data(), model.at(L.post_norm), 1.f, eps, a.xn2.data(), a.inv_rms2.data(),
                    M, C);
    resize(a.gate_up, M * 2 * F);
    linear_forward(a.xn2.data(), model.at(L.gate_up), a.gate_up.data(), M, 2 * F, C, A.opts.precision);
    resize(a.act, M * F);
    swiglu_forward(a.gate_up.data(), a.act.data(), M, F);
    linear_forward(a.act.data(), model.at(L.down), x.data(), M, C, F, A.opts.precision);
    for (int64_t i = 0; i < M * C; ++i) x[i] += a.h[i];
  }
  A.x_final = std::move(x);
  resize(A.inv_rms_f, M);
  resize(A.xn_f, M * C);
  rmsnorm_forward(A.x_final.data(), model.at(P.final_norm), 1.f, eps, A.xn_f.data(),
                  A.inv_rms_f.data(), M, C);
  resize(A.logits, M * V);
  linear_forward(A.xn_f.data(), model.at(P.lm_head), A.logits.data(), M, V, C, A.opts.precision);
  A.loss = cross_entropy_forward(A.logits.data(), A.targets.data(), M, V, &A.counted);
  return A.loss;
}

void backward(const Model& model, Activations& A, float* grads, double dloss) {
  const Config& c = model.config;
  const ParamLayout& P = model.layout;
  const int64_t B = A.B, T = A.T, M = B * T, C = c.hidden_size, F = c.intermediate_size,
                V = c.vocab_size;
  const HeadGeometry ad = attn_dims(c, B, T);
  const int64_t Wqkv = c.q_width() + 2 * c.kv_width(), Wattn = ad.Pq * ad.dv();
  const HeadMapping map{c.diff_split_layout};
  float* G = grads;

  // Head: loss -> logits -> final norm.
  std::vector<float> dlogits(static_cast<size_t>(M * V));
  cross_entropy_backward(A.logits.data(), A.targets.data(), M, V, dloss, dlogits.data());
  std::vector<float> dxn(static_cast<size_t>(M * C));
  linear_backward(dlogits.data(), A.xn_f.data(), model.at(P.lm_head), dxn.data(), G + P.lm_head,
                  M, V, C, false, A.opts.precision);
  dlogits = {};
  std::vector<float> dx(static_cast<size_t>(M * C), 0.f);
  rmsnorm_backward(dxn.data(), A.x_final.data(), model.at(P.final_norm), 1.f,
                   A.inv_rms_f.data(), dx.data(), G + P.final_norm, M, C);

  std::vector<float> dh, dact, dgu, dattn_out, dpre, dQ, dK, dV, dqkv;
  resize(dact, M * F);
  resize(dgu, M * 2 * F);
  resize(dattn_out, M * Wattn);
  resize(dQ, M * c.q_width());
  resize(dK, M * c.kv_width());
  resize(dV, M * c.kv_width());
  resize(dqkv, M * Wqkv);
  for (int64_t l = c.num_hidden_layers - 1; l >= 0; --l) {
    const LayerOffsets& L = P.layers[l];
    LayerActivations& a = A.layers[l];
    // out = h + down(swiglu(gate_up(norm2(h))))
    dh = dx;
    linear_backward(dx.data(), a.act.data(), model.at(L.down), dact.data(), G + L.down, M, C, F,
                    false, A.opts.precision);
    swiglu_backward(a.gate_up.data(), dact.data(), dgu.data(), M, F);
    linear_backward(dgu.data(), a.xn2.data(), model.at(L.gate_up), dxn.data(), G + L.gate_up, M,
                    2 * F, C, false, A.opts.precision);
    rmsnorm_backward(dxn.data(), a.h.data(), model.at(L.post_norm), 1.f, a.inv_rms2.data(),
                     dh.data(), G + L.post_norm, M, C);
    // h = x_in + o_proj(attention(norm1(x_in)))
    dx = dh;
    linear_backward(dh.data(), c.is_diff() ? a.attn_out.data() : a.attn_pre.data(),
                    model.at(L.o_proj), dattn_out.data(),
                    G + L.o_proj, M, C, Wattn, false, A.opts.precision);
    const float* dattn_pre = dattn_out.data();
    if (c.is_diff()) {
      dpre.assign(static_cast<size_t>(M * Wattn), 0.f);
      rmsnorm_backward(dattn_out.data(), a.attn_pre.data(),
                       L.groupnorm == kNone ? nullptr : model.at(L.groupnorm),
                       static_cast<float>(1.0 - c.lambda_init(l)), a.inv_rms_h.data(),
                       dpre.data(), L.groupnorm == kNone ? nullptr : G + L.groupnorm,
                       M * ad.Pq, ad.dv());
      dattn_pre = dpre.data();
    }
    const float dlambda =
        A.opts.attention == AttentionKernel::kFlash
            ? flash_attention_backward(ad, a.Q.data(), a.K.data(), a.V.data(), a.lambda,
                                       a.flash_saved, dattn_pre, dQ.data(), dK.data(), dV.data())
            : attention_backward_reference(ad, a.Q.data(), a.K.data(), a.V.data(), a.lambda,
                                           a.attn_saved, dattn_pre, dQ.data(), dK.data(),
                                           dV.data());
    if (c.is_diff())
      lambda_backward(dlambda, model.at(L.lambda_q1), model.at(L.lambda_k1),
                      model.at(L.lambda_q2), model.at(L.lambda_k2), c.head_dim,
                      G + L.lambda_q1, G + L.lambda_k1, G + L.lambda_q2, G + L.lambda_k2);
    qkv_to_heads_backward(ad, map, A.rope, dQ.data(), dK.data(), dV.data(), dqkv.data());
    linear_backward(dqkv.data(), a.xn1.data(), model.at(L.qkv), dxn.data(), G + L.qkv, M, Wqkv,
                    C, false, A.opts.precision);
    rmsnorm_backward(dxn.data(), a.x_in.data(), model.at(L.input_norm), 1.f, a.inv_rms1.data(),
                     dx.data(), G + L.input_norm, M, C);
  }
  embedding_backward(dx.data(), A.tokens.data(), G + P.embed, M, C);
}

}  // namespace difftx
