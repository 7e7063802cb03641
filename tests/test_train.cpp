// AdamW against a hand computation, and the bf16 matrix-product path against fp32.
#include <gtest/gtest.h>

#include <cmath>

#include "model/transformer.h"
#include "test_util.h"
#include "train/adamw.h"

namespace difftx {
namespace {

Config small_config() {
  Config c;
  c.model_type = ModelType::kDiffLlama;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.head_dim = 16;
  c.diff_split_layout = false;
  c.rope_interleaved = true;
  c.diff_norm_affine = true;
  return c;
}

TEST(AdamW, TwoStepsMatchHandComputationAndSkipDecayOnNorms) {
  const Config c = small_config();
  Model m(c);
  init_parameters(m, 1);
  AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  AdamW opt(m.layout, cfg);
  Rng rng(2);
  const size_t n = m.layout.total;
  std::vector<double> p(m.params.data(), m.params.data() + n), mo(n, 0), vo(n, 0);
  std::vector<float> g(n);
  const double lr = 1e-2;
  for (int step = 1; step <= 2; ++step) {
    for (auto& x : g) x = static_cast<float>(rng.normal());
    opt.step(m.params.data(), g.data(), lr);
    for (const auto& t : m.layout.tensors) {
      const double decay = t.kind == ParamKind::kMatrix ? 1 - lr * cfg.weight_decay : 1.0;
      for (size_t i = t.offset; i < t.offset + t.numel; ++i) {
        mo[i] = cfg.beta1 * mo[i] + (1 - cfg.beta1) * g[i];
        vo[i] = cfg.beta2 * vo[i] + (1 - cfg.beta2) * double(g[i]) * g[i];
        const double mh = mo[i] / (1 - std::pow(cfg.beta1, step));
        const double vh = vo[i] / (1 - std::pow(cfg.beta2, step));
        p[i] = p[i] * decay - lr * mh / (std::sqrt(vh) + cfg.eps);
      }
    }
  }
  for (const auto& t : m.layout.tensors)
    EXPECT_LT(test::max_rel_error(m.params.data() + t.offset, p.data() + t.offset, t.numel), 1e-5)
        << t.name;
}

TEST(Precision, Bf16LossAndGradientsStayCloseToFp32) {
  const Config c = small_config();
  Model m(c);
  Rng rng(3);
  for (size_t i = 0; i < m.layout.total; ++i) m.params.data()[i] = static_cast<float>(0.1 * rng.normal());
  const int64_t B = 2, T = 33;
  std::vector<int32_t> tokens(B * T);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(97));
  const auto targets = next_token_targets(tokens, B, T);
  double loss[2];
  std::vector<float> grads[2];
  for (int k = 0; k < 2; ++k) {
    RunOptions opts;
    opts.precision = k ? Precision::kBF16 : Precision::kFP32;
    Activations acts;
    loss[k] = forward(m, tokens.data(), targets.data(), B, T, acts, opts);
    AlignedFloats g(m.layout.total);
    backward(m, acts, g.data());
    grads[k].assign(g.data(), g.data() + m.layout.total);
  }
  // bf16 keeps 8 bits of mantissa: relative rounding 2^-9 per input, so a loss within 1%
  // and gradients pointing the same way (cosine > 0.99) are what to expect.
  EXPECT_NEAR(loss[1], loss[0], 1e-2 * loss[0]);
  EXPECT_NE(loss[1], loss[0]) << "bf16 path should actually round";
  double dot = 0, n0 = 0, n1 = 0;
  for (size_t i = 0; i < grads[0].size(); ++i) {
    dot += double(grads[0][i]) * grads[1][i];
    n0 += double(grads[0][i]) * grads[0][i];
    n1 += double(grads[1][i]) * grads[1][i];
  }
  EXPECT_GT(dot / std::sqrt(n0 * n1), 0.99);
}

}  // namespace
}  // namespace difftx
