#include "infer/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"

namespace difftx {

KvSession::KvSession(const Model& model, int64_t max_tokens, const RunOptions& opts)
    : model_(model), opts_(opts), cap_(max_tokens) {
  const Config& c = model.config;
  check(max_tokens > 0 && max_tokens <= c.max_position_embeddings,
        "context of " + std::to_string(max_tokens) + " tokens is outside [1, " +
            std::to_string(c.max_position_embeddings) + "] (max_position_embeddings)");
  rope_ = make_rope_table(cap_, c.head_dim, c.rope_theta, c.rope_interleaved);
  K_.assign(static_cast<size_t>(c.num_hidden_layers),
            std::vector<float>(static_cast<size_t>(c.kv_width() * cap_)));
  V_ = K_;
}

size_t KvSession::cache_bytes() const {
  return 2 * K_.size() * (K_.empty() ? 0 : K_[0].size()) * sizeof(float);
}

const std::vector<float>& KvSession::prefill(const std::vector<int32_t>& tokens) {
  check(!tokens.empty(), "empty prompt");
  const int64_t T = static_cast<int64_t>(tokens.size());
  check(len_ + T <= cap_, "prompt of " + std::to_string(T) + " tokens does not fit the context (" +
                              std::to_string(cap_ - len_) + " positions left)");
  if (len_ > 0) {  // continuing a sequence: one token at a time
    for (int32_t t : tokens) decode(t);
    return logits_;
  }
  const Config& c = model_.config;
  Activations acts;
  forward(model_, tokens.data(), nullptr, 1, T, acts, opts_);
  // Canonical K [Pk, ncomp, T, d] and V [Pk, T, dv] (B = 1) into the cache's capacity rows.
  const int64_t Pk = c.kv_groups(), nc = c.ncomp(), d = c.head_dim, dv = nc * d;
  for (size_t l = 0; l < K_.size(); ++l) {
    for (int64_t r = 0; r < Pk * nc; ++r)
      std::memcpy(K_[l].data() + r * cap_ * d, acts.layers[l].K.data() + r * T * d,
                  sizeof(float) * T * d);
    for (int64_t g = 0; g < Pk; ++g)
      std::memcpy(V_[l].data() + g * cap_ * dv, acts.layers[l].V.data() + g * T * dv,
                  sizeof(float) * T * dv);
  }
  len_ = T;
  const int64_t V = c.vocab_size;
  logits_.assign(acts.logits.end() - V, acts.logits.end());
  return logits_;
}

const std::vector<float>& KvSession::decode(int32_t token) {
  check(len_ < cap_, "context is full (" + std::to_string(cap_) + " tokens)");
  append_token(token);
  return logits_;
}

void KvSession::append_token(int32_t token) {
  const Config& c = model_.config;
  const ParamLayout& P = model_.layout;
  check(token >= 0 && token < c.vocab_size, "token id " + std::to_string(token) +
                                                " is out of range [0, " +
                                                std::to_string(c.vocab_size) + ")");
  const int64_t C = c.hidden_size, F = c.intermediate_size, d = c.head_dim, nc = c.ncomp();
  const int64_t Pq = c.query_heads(), Pk = c.kv_groups(), dv = nc * d, rep = Pq / Pk;
  const int64_t nq = c.num_attention_heads, nk = c.num_key_value_heads;
  const int64_t Wqkv = c.q_width() + 2 * c.kv_width(), pos = len_, n_keys = pos + 1;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const HeadMapping map{c.diff_split_layout};
  x_.resize(C);
  xn_.resize(C);
  qkv_.resize(Wqkv);
  q_.resize(c.q_width());
  o_.resize(Pq * dv);
  o2_.resize(Pq * dv);
  h_.resize(C);
  gu_.resize(2 * F);
  act_.resize(F);
  inv_.resize(Pq);
  std::vector<double> w(static_cast<size_t>(nc * n_keys));
  embedding_forward(model_.at(P.embed), &token, x_.data(), 1, C);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerOffsets& L = P.layers[l];
    float* Kc = K_[l].data();
    float* Vc = V_[l].data();
    rmsnorm_forward(x_.data(), model_.at(L.input_norm), 1.f, eps, xn_.data(), inv_.data(), 1, C);
    linear_forward(xn_.data(), model_.at(L.qkv), qkv_.data(), 1, Wqkv, C, opts_.precision);
    for (int64_t s = 0; s < nq; ++s) {  // queries, canonical [Pq, ncomp, d]
      const HeadSlot sl = head_slot(s, Pq, nc, map);
      float* dst = q_.data() + (sl.head * nc + sl.comp) * d;
      std::memcpy(dst, qkv_.data() + s * d, sizeof(float) * d);
      rope_rotate(rope_, pos, dst, false);
    }
    for (int64_t s = 0; s < nk; ++s) {  // this position's keys and values into the cache
      const HeadSlot sl = head_slot(s, Pk, nc, map);
      float* kd = Kc + ((sl.head * nc + sl.comp) * cap_ + pos) * d;
      std::memcpy(kd, qkv_.data() + (nq + s) * d, sizeof(float) * d);
      rope_rotate(rope_, pos, kd, false);
      std::memcpy(Vc + (sl.head * cap_ + pos) * dv + sl.comp * d,
                  qkv_.data() + (nq + nk + s) * d, sizeof(float) * d);
    }
    const float lambda =
        c.is_diff() ? lambda_forward(model_.at(L.lambda_q1), model_.at(L.lambda_k1),
                                     model_.at(L.lambda_q2), model_.at(L.lambda_k2), d,
                                     static_cast<float>(c.lambda_init(l)))
                    : 0.f;
    for (int64_t h = 0; h < Pq; ++h) {
      const int64_t g = h / rep;
      for (int64_t comp = 0; comp < nc; ++comp) {  // softmax weights of each map
        const float* q = q_.data() + (h * nc + comp) * d;
        const float* k = Kc + (g * nc + comp) * cap_ * d;
        double* wc = w.data() + comp * n_keys;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < n_keys; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[e]) * k[j * d + e];
          wc[j] = dot * scale;
          mx = std::max(mx, wc[j]);
        }
        for (int64_t j = 0; j < n_keys; ++j) sum += (wc[j] = std::exp(wc[j] - mx));
        const double coef = (comp == 0 ? 1.0 : -static_cast<double>(lambda)) / sum;
        for (int64_t j = 0; j < n_keys; ++j) wc[j] *= coef;
      }
      float* o = o_.data() + h * dv;
      const float* v = Vc + g * cap_ * dv;
      for (int64_t e = 0; e < dv; ++e) {
        double acc = 0.0;
        for (int64_t j = 0; j < n_keys; ++j) {
          double a = w[j];
          if (nc == 2) a += w[n_keys + j];
          acc += a * v[j * dv + e];
        }
        o[e] = static_cast<float>(acc);
      }
    }
    const float* attn = o_.data();
    if (c.is_diff()) {
      rmsnorm_forward(o_.data(), L.groupnorm == kNone ? nullptr : model_.at(L.groupnorm),
                      static_cast<float>(1.0 - c.lambda_init(l)), eps, o2_.data(), inv_.data(),
                      Pq, dv);
      attn = o2_.data();
    }
    linear_forward(attn, model_.at(L.o_proj), h_.data(), 1, C, Pq * dv, opts_.precision);
    for (int64_t i = 0; i < C; ++i) h_[i] += x_[i];
    rmsnorm_forward(h_.data(), model_.at(L.post_norm), 1.f, eps, xn_.data(), inv_.data(), 1, C);
    linear_forward(xn_.data(), model_.at(L.gate_up), gu_.data(), 1, 2 * F, C, opts_.precision);
    swiglu_forward(gu_.data(), act_.data(), 1, F);
    linear_forward(act_.data(), model_.at(L.down), x_.data(), 1, C, F, opts_.precision);
    for (int64_t i = 0; i < C; ++i) x_[i] += h_[i];
  }
  rmsnorm_forward(x_.data(), model_.at(P.final_norm), 1.f, eps, xn_.data(), inv_.data(), 1, C);
  logits_.resize(c.vocab_size);
  linear_forward(xn_.data(), model_.at(P.lm_head), logits_.data(), 1, c.vocab_size, C,
                 opts_.precision);
  ++len_;
}

}  // namespace difftx
