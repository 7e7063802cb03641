#include "model/transformer.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "model/extensions.h"
#include "model/geometry.h"
#include "model/layer.h"

namespace difftx {
namespace {

void resize(std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); }

// The rotary table covers positions [0, n); rebuilt only when too short or for another model.
void ensure_rope(RopeTable& rope, const Config& c, int64_t n) {
  std::vector<double> inv_freq = rope_inverse_frequencies(c);
  if (rope.T < n || rope.interleaved != c.rope_interleaved || rope.inv_freq != inv_freq)
    rope = make_rope_table(n, inv_freq, c.rope_interleaved);
}

// Positions of each row's first token, and whether any row continues a cached sequence.
struct Positions {
  std::vector<int64_t> rows, pos0;
  bool continues = false;
  int64_t end = 0;  // one past the last position of the pass
};

Positions positions(const PassOptions& pass, int64_t B, int64_t T) {
  Positions p;
  p.end = T;
  if (!pass.cache) return p;
  const KvCache& cache = *pass.cache;
  p.rows.resize(static_cast<size_t>(B));
  p.pos0.resize(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = pass.cache_rows ? pass.cache_rows[b] : b;
    check(s >= 0 && s < cache.sequences(), "sequence ", s, " is not in the KV cache (",
          cache.sequences(), " sequences)");
    for (int64_t b2 = 0; b2 < b; ++b2)
      check(p.rows[b2] != s, "sequence ", s, " appears twice in one pass");
    const int64_t len = cache.len[static_cast<size_t>(s)];
    check(len + T <= cache.capacity(), "context is full: ", len, " + ", T,
          " tokens exceed the cache's ", cache.capacity());
    p.rows[b] = s;
    p.pos0[b] = len;
    p.continues = p.continues || len > 0;
    p.end = std::max(p.end, len + T);
  }
  return p;
}

}  // namespace

std::vector<int32_t> next_token_targets(const std::vector<int32_t>& tokens, int64_t B,
                                        int64_t T) {
  std::vector<int32_t> targets(tokens.size(), -1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) targets[b * T + t] = tokens[b * T + t + 1];
  return targets;
}

double forward(const Model& model, const int32_t* tokens, const int32_t* targets, int64_t B,
               int64_t T, Activations& A, const RunOptions& opts, const PassOptions& pass) {
  const Config& c = model.config;
  const ParamLayout& P = model.layout;
  check(B > 0 && T > 0, "empty batch: need at least one token");
  check(T <= c.max_position_embeddings, "sequence of ", T,
        " tokens exceeds max_position_embeddings (", c.max_position_embeddings, ")");
  check(!targets || pass.logits == LogitRows::kAll, "a loss needs the logits of every token");
  check(!pass.cache || pass.keep == Keep::kNothing,
        "a pass over a KV cache keeps no activations (there is no backward through the cache)");
  const int64_t M = B * T, C = c.hidden_size, V = c.vocab_size;
  for (int64_t m = 0; m < M; ++m) {
    check(tokens[m] >= 0 && tokens[m] < V, "token id ", tokens[m], " at position ", m,
          " is out of range [0, ", V, ")");
    if (targets) check(targets[m] < V, "target id ", targets[m], " is out of range [0, ", V, ")");
  }
  const Positions pos = positions(pass, B, T);
  // With a cache, cover its whole capacity at once: decoding then never rebuilds the table.
  ensure_rope(A.rope, c, pass.cache ? pass.cache->capacity() : pos.end);
  A.opts = opts;
  A.keep = pass.keep;
  A.B = B;
  A.T = T;
  A.tokens.assign(tokens, tokens + M);
  A.targets = targets ? std::vector<int32_t>(targets, targets + M) : std::vector<int32_t>(M, -1);
  A.layers.resize(pass.keep == Keep::kForBackward ? static_cast<size_t>(c.num_hidden_layers) : 1);
  resize(A.qkv, M * (c.q_width() + 2 * c.kv_width()));

  LayerPass lp{model, head_geometry(c, B, T), HeadMapping{c.diff_split_layout}, A.rope, opts};
  check(opts.attention_logit_bits == 0 || (pass.keep == Keep::kNothing && !pos.continues),
        "attention logit quantisation is for evaluation passes over whole sequences "
        "(no training, no KV cache continuation)");
  lp.keep = pass.keep;
  lp.cache = pass.cache;
  lp.rows = pos.rows.empty() ? nullptr : pos.rows.data();
  lp.pos0 = pos.pos0.empty() ? nullptr : pos.pos0.data();
  lp.continues = pos.continues;
  lp.observer = pass.observer;
  lp.qkv = A.qkv.data();
  // ext_attention_loss is a training objective: its term only in passes kept for backward
  // (training, inspect --grads); evaluation reports the cross-entropy.
  ext_setup_pass(c, T, targets != nullptr && pass.keep == Keep::kForBackward,
                 pass.cache != nullptr, lp);
  A.explicit_maps = lp.explicit_maps;
  A.attention_loss = lp.attention_loss_weight > 0;
  A.attention_reg = 0.0;

  std::vector<float> x(static_cast<size_t>(M * C));
  embedding_forward(model.at(P.embed), tokens, x.data(), M, C);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    LayerActivations& la = A.layers[pass.keep == Keep::kForBackward ? l : 0];
    layer_forward(lp, l, x.data(), la);
    A.attention_reg += la.ext.reg;
  }
  if (pass.cache)
    for (int64_t b = 0; b < B; ++b) pass.cache->len[static_cast<size_t>(pos.rows[b])] += T;

  A.counted = 0;
  A.loss = 0.0;
  if (pass.logits == LogitRows::kSkip) {
    A.logits.clear();
    A.x_final = std::move(x);
    return 0.0;
  }
  // The rows whose logits are asked for: all, or the last token of each sequence.
  if (pass.logits == LogitRows::kAll) {
    A.x_final = std::move(x);
  } else {
    resize(A.x_final, B * C);
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(x.data() + ((b + 1) * T - 1) * C, C, A.x_final.data() + b * C);
  }
  const int64_t R = static_cast<int64_t>(A.x_final.size()) / C;
  resize(A.inv_rms_f, R);
  resize(A.xn_f, R * C);
  rmsnorm_forward(A.x_final.data(), model.at(P.final_norm), 1.f,
                  static_cast<float>(c.rms_norm_eps), A.xn_f.data(), A.inv_rms_f.data(), R, C);
  resize(A.logits, R * V);
  linear_forward(A.xn_f.data(), model.at(P.lm_head), A.logits.data(), R, V, C, opts.precision);
  if (targets) A.loss = cross_entropy_forward(A.logits.data(), A.targets.data(), M, V, &A.counted);
  if (A.attention_loss) A.loss += lp.attention_loss_weight * A.attention_reg;
  return A.loss;
}

void backward(const Model& model, Activations& A, float* grads, double dloss) {
  const Config& c = model.config;
  const ParamLayout& P = model.layout;
  check(A.keep == Keep::kForBackward &&
            A.layers.size() == static_cast<size_t>(c.num_hidden_layers) &&
            A.logits.size() == static_cast<size_t>(A.B * A.T * c.vocab_size),
        "backward needs a forward pass that kept its activations and every logit");
  const int64_t M = A.B * A.T, C = c.hidden_size, V = c.vocab_size;

  // Head: loss -> logits -> final norm.
  std::vector<float> dlogits(static_cast<size_t>(M * V));
  cross_entropy_backward(A.logits.data(), A.targets.data(), M, V, dloss, dlogits.data());
  std::vector<float> dxn(static_cast<size_t>(M * C));
  linear_backward(dlogits.data(), A.xn_f.data(), model.at(P.lm_head), dxn.data(),
                  grads + P.lm_head, M, V, C, false, A.opts.precision);
  dlogits = {};
  std::vector<float> dx(static_cast<size_t>(M * C), 0.f);
  rmsnorm_backward(dxn.data(), A.x_final.data(), model.at(P.final_norm), 1.f,
                   A.inv_rms_f.data(), dx.data(), grads + P.final_norm, M, C);
  backward_from_stream(model, A, std::move(dx), grads, dloss);
}

void backward_from_stream(const Model& model, Activations& A, std::vector<float> dx,
                          float* grads, double dloss) {
  const Config& c = model.config;
  const ParamLayout& P = model.layout;
  check(A.keep == Keep::kForBackward &&
            A.layers.size() == static_cast<size_t>(c.num_hidden_layers) &&
            dx.size() == static_cast<size_t>(A.B * A.T * c.hidden_size),
        "backward needs a forward pass that kept its activations and a gradient per position");
  const int64_t M = A.B * A.T, C = c.hidden_size;
  LayerPass lp{model, head_geometry(c, A.B, A.T), HeadMapping{c.diff_split_layout}, A.rope,
               A.opts};
  lp.explicit_maps = A.explicit_maps;
  lp.attention_loss_weight = A.attention_loss ? c.ext.attention_loss->alpha * dloss : 0.0;
  LayerGradScratch scratch;
  for (int64_t l = c.num_hidden_layers - 1; l >= 0; --l)
    layer_backward(lp, l, A.layers[static_cast<size_t>(l)], dx, scratch, grads);
  embedding_backward(dx.data(), A.tokens.data(), grads + P.embed, M, C);
}

}  // namespace difftx
