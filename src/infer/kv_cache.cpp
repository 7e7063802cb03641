#include "infer/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/memory_limit.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "kernels/vec_math.h"

namespace difftx {

KvSession::KvSession(const Model& model, int64_t max_tokens, const RunOptions& opts,
                     int64_t batch)
    : model_(model), opts_(opts), cap_(max_tokens), batch_(batch) {
  const Config& c = model.config;
  check(max_tokens > 0 && max_tokens <= c.max_position_embeddings,
        "context of " + std::to_string(max_tokens) + " tokens is outside [1, " +
            std::to_string(c.max_position_embeddings) + "] (max_position_embeddings)");
  check(batch >= 1, "batch must be >= 1");
  // Keys and values of every layer, next to the weights already in memory (before allocating).
  check_fits_in_memory(uint128(2) * uint128(c.num_hidden_layers) * uint128(c.kv_width()) *
                               uint128(max_tokens) * uint128(batch) * sizeof(float) +
                           uint128(model.layout.total) * sizeof(float),
                       "a KV cache of " + std::to_string(batch) + " x " +
                           std::to_string(max_tokens) + " tokens",
                       "use a shorter context (prompt + --max-tokens) or fewer prompts");
  rope_ = make_rope_table(cap_, c.head_dim, c.rope_theta, c.rope_interleaved);
  per_seq_k_ = per_seq_v_ = c.kv_width() * cap_;
  K_.assign(static_cast<size_t>(c.num_hidden_layers),
            std::vector<float>(static_cast<size_t>(per_seq_k_ * batch_)));
  V_ = K_;
  len_.assign(static_cast<size_t>(batch_), 0);
}

const float* KvSession::prefill(int64_t b, const std::vector<int32_t>& tokens) {
  check(b >= 0 && b < batch_, "sequence index out of range");
  check(!tokens.empty(), "empty prompt");
  const int64_t T = static_cast<int64_t>(tokens.size());
  check(T <= cap_, "prompt of " + std::to_string(T) + " tokens does not fit the context of " +
                       std::to_string(cap_));
  const Config& c = model_.config;
  Activations acts;
  forward(model_, tokens.data(), nullptr, 1, T, acts, opts_);
  // Canonical K [Pk, ncomp, T, d] and V [Pk, T, dv] (B = 1) into the cache's capacity rows.
  const int64_t Pk = c.kv_groups(), nc = c.ncomp(), d = c.head_dim, dv = nc * d;
  for (size_t l = 0; l < K_.size(); ++l) {
    for (int64_t r = 0; r < Pk * nc; ++r)
      std::memcpy(k_seq(l, b) + r * cap_ * d, acts.layers[l].K.data() + r * T * d,
                  sizeof(float) * T * d);
    for (int64_t g = 0; g < Pk; ++g)
      std::memcpy(v_seq(l, b) + g * cap_ * dv, acts.layers[l].V.data() + g * T * dv,
                  sizeof(float) * T * dv);
  }
  len_[b] = T;
  one_.assign(acts.logits.end() - c.vocab_size, acts.logits.end());
  return one_.data();
}

const std::vector<float>& KvSession::prefill(const std::vector<int32_t>& tokens) {
  prefill(0, tokens);
  logits_ = one_;
  return logits_;
}

const std::vector<float>& KvSession::decode(int32_t token) {
  return decode(std::vector<int64_t>{0}, std::vector<int32_t>{token});
}

const std::vector<float>& KvSession::decode(const std::vector<int64_t>& rows,
                                            const std::vector<int32_t>& tokens) {
  const Config& c = model_.config;
  const ParamLayout& P = model_.layout;
  const int64_t n = static_cast<int64_t>(rows.size());
  check(n > 0 && tokens.size() == rows.size(), "decode needs one token per sequence");
  for (int64_t i = 0; i < n; ++i) {
    check(rows[i] >= 0 && rows[i] < batch_, "sequence index out of range");
    check(len_[rows[i]] < cap_, "context is full (" + std::to_string(cap_) + " tokens)");
    check(tokens[i] >= 0 && tokens[i] < c.vocab_size,
          "token id " + std::to_string(tokens[i]) + " is out of range [0, " +
              std::to_string(c.vocab_size) + ")");
  }
  const int64_t C = c.hidden_size, F = c.intermediate_size, d = c.head_dim, nc = c.ncomp();
  const int64_t Pq = c.query_heads(), Pk = c.kv_groups(), dv = nc * d, rep = Pq / Pk;
  const int64_t nq = c.num_attention_heads, nk = c.num_key_value_heads;
  const int64_t Wqkv = c.q_width() + 2 * c.kv_width();
  const float eps = static_cast<float>(c.rms_norm_eps);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const HeadMapping map{c.diff_split_layout};
  x_.resize(n * C);
  xn_.resize(n * C);
  qkv_.resize(n * Wqkv);
  q_.resize(n * c.q_width());
  o_.resize(n * Pq * dv);
  o2_.resize(n * Pq * dv);
  h_.resize(n * C);
  gu_.resize(n * 2 * F);
  act_.resize(n * F);
  inv_.resize(n * Pq);
  embedding_forward(model_.at(P.embed), tokens.data(), x_.data(), n, C);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerOffsets& L = P.layers[l];
    rmsnorm_forward(x_.data(), model_.at(L.input_norm), 1.f, eps, xn_.data(), inv_.data(), n, C);
    linear_forward(xn_.data(), model_.at(L.qkv), qkv_.data(), n, Wqkv, C, opts_.precision);
    const float lambda =
        c.is_diff() ? lambda_forward(model_.at(L.lambda_q1), model_.at(L.lambda_k1),
                                     model_.at(L.lambda_q2), model_.at(L.lambda_k2), d,
                                     static_cast<float>(c.lambda_init(l)))
                    : 0.f;
    for (int64_t i = 0; i < n; ++i) {  // RoPE'd queries, and this position's keys and values
      const int64_t pos = len_[rows[i]];
      const float* row = qkv_.data() + i * Wqkv;
      float* q_all = q_.data() + i * c.q_width();
      float* Kc = k_seq(l, rows[i]);
      float* Vc = v_seq(l, rows[i]);
      for (int64_t s = 0; s < nq; ++s) {  // queries, canonical [Pq, ncomp, d]
        const HeadSlot sl = head_slot(s, Pq, nc, map);
        float* dst = q_all + (sl.head * nc + sl.comp) * d;
        std::memcpy(dst, row + s * d, sizeof(float) * d);
        rope_rotate(rope_, pos, dst, false);
      }
      for (int64_t s = 0; s < nk; ++s) {
        const HeadSlot sl = head_slot(s, Pk, nc, map);
        float* kd = Kc + ((sl.head * nc + sl.comp) * cap_ + pos) * d;
        std::memcpy(kd, row + (nq + s) * d, sizeof(float) * d);
        rope_rotate(rope_, pos, kd, false);
        std::memcpy(Vc + (sl.head * cap_ + pos) * dv + sl.comp * d, row + (nq + nk + s) * d,
                    sizeof(float) * d);
      }
    }
    // Attention of each (sequence, head) over its cache, in parallel.
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t h = 0; h < Pq; ++h) {
        const int64_t n_keys = len_[rows[i]] + 1, g = h / rep;
        const float* q_all = q_.data() + i * c.q_width();
        const float* Kc = k_seq(l, rows[i]);
        const float* Vc = v_seq(l, rows[i]);
        std::vector<float> w(static_cast<size_t>(nc * n_keys));
        for (int64_t comp = 0; comp < nc; ++comp) {  // softmax weights of each map
          const float* q = q_all + (h * nc + comp) * d;
          const float* k = Kc + (g * nc + comp) * cap_ * d;
          float* wc = w.data() + comp * n_keys;
          float mx = -INFINITY;
          for (int64_t j = 0; j < n_keys; ++j) {
            float dot = 0.f;
#pragma omp simd reduction(+ : dot)
            for (int64_t e = 0; e < d; ++e) dot += q[e] * k[j * d + e];
            wc[j] = dot * static_cast<float>(scale);
            mx = std::max(mx, wc[j]);
          }
          float sum = 0.f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < n_keys; ++j) sum += (wc[j] = fast_exp(wc[j] - mx));
          const float coef = (comp == 0 ? 1.f : -lambda) / sum;
          for (int64_t j = 0; j < n_keys; ++j) wc[j] *= coef;
        }
        float* o = o_.data() + (i * Pq + h) * dv;
        std::fill(o, o + dv, 0.f);
        const float* v = Vc + g * cap_ * dv;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float a = nc == 2 ? w[j] + w[n_keys + j] : w[j];
#pragma omp simd
          for (int64_t e = 0; e < dv; ++e) o[e] += a * v[j * dv + e];
        }
      }
    }
    const float* attn = o_.data();
    if (c.is_diff()) {
      rmsnorm_forward(o_.data(), L.groupnorm == kNone ? nullptr : model_.at(L.groupnorm),
                      static_cast<float>(1.0 - c.lambda_init(l)), eps, o2_.data(), inv_.data(),
                      n * Pq, dv);
      attn = o2_.data();
    }
    linear_forward(attn, model_.at(L.o_proj), h_.data(), n, C, Pq * dv, opts_.precision);
    for (int64_t i = 0; i < n * C; ++i) h_[i] += x_[i];
    rmsnorm_forward(h_.data(), model_.at(L.post_norm), 1.f, eps, xn_.data(), inv_.data(), n, C);
    linear_forward(xn_.data(), model_.at(L.gate_up), gu_.data(), n, 2 * F, C, opts_.precision);
    swiglu_forward(gu_.data(), act_.data(), n, F);
    linear_forward(act_.data(), model_.at(L.down), x_.data(), n, C, F, opts_.precision);
    for (int64_t i = 0; i < n * C; ++i) x_[i] += h_[i];
  }
  for (int64_t i = 0; i < n; ++i) ++len_[rows[i]];
  rmsnorm_forward(x_.data(), model_.at(P.final_norm), 1.f, eps, xn_.data(), inv_.data(), n, C);
  logits_.resize(static_cast<size_t>(n * c.vocab_size));
  linear_forward(xn_.data(), model_.at(P.lm_head), logits_.data(), n, c.vocab_size, C,
                 opts_.precision);
  return logits_;
}

}  // namespace difftx
