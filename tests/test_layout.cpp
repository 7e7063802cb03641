// Layout equivalences: a split-layout checkpoint whose q/k/v rows are the permutation of an
// interleaved one computes the same function, and so does a half-RoPE checkpoint whose rows
// are permuted within each sub-head from a GPT-J-RoPE one. Without the permutation the
// outputs differ, so the test can fail.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "model/transformer.h"
#include "test_util.h"

namespace difftx {
namespace {

Config gqa_config() {
  Config c;
  c.model_type = ModelType::kDiffLlama;
  c.vocab_size = 29;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 6;
  c.diff_split_layout = false;
  c.rope_interleaved = true;
  c.diff_norm_affine = true;
  c.rope_theta = 100;
  return c;
}

// Random weights large enough that attention is far from uniform.
void randomize(Model& m, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = 0; i < m.layout.total; ++i) m.params.data()[i] = static_cast<float>(0.4 * rng.normal());
  for (const auto& t : m.layout.tensors)
    if (t.kind == ParamKind::kNorm)
      for (size_t i = 0; i < t.numel; ++i) m.at(t.offset)[i] = static_cast<float>(1 + 0.1 * rng.normal());
}

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& tokens) {
  Activations acts;
  forward(m, tokens.data(), nullptr, 1, static_cast<int64_t>(tokens.size()), acts);
  return acts.logits;
}

// Rewrites the rows of a [rows, cols] matrix: new row r = old row src(r).
void permute_rows(float* w, int64_t rows, int64_t cols, const std::function<int64_t(int64_t)>& src) {
  std::vector<float> old(w, w + rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    std::copy(old.begin() + src(r) * cols, old.begin() + (src(r) + 1) * cols, w + r * cols);
}

const std::vector<int32_t> kTokens{3, 17, 5, 28, 0, 9, 9, 14, 2, 21, 6};

TEST(Layout, SplitIsAPermutationOfInterleaved) {
  const Config ci = gqa_config();
  Model inter(ci);
  randomize(inter, 11);
  Config cs = ci;
  cs.diff_split_layout = true;
  Model split(cs);
  std::copy(inter.params.data(), inter.params.data() + inter.layout.total, split.params.data());
  const int64_t d = ci.head_dim, C = ci.hidden_size;
  const std::vector<float> before = logits_of(inter, kTokens);
  ASSERT_GT(test::max_rel_error(logits_of(split, kTokens).data(), before.data(), before.size()), 1e-3)
      << "layouts should differ before the permutation";
  for (const auto& L : split.layout.layers) {
    float* q = split.at(L.qkv);
    float* k = q + ci.q_width() * C;
    float* v = k + ci.kv_width() * C;
    // split sub-head s = head + comp * P  <-  interleaved sub-head 2 * head + comp
    auto sub_src = [](int64_t P) {
      return [P](int64_t s) { return 2 * (s % P) + s / P; };
    };
    for (auto [w, n, P] : {std::tuple{q, ci.num_attention_heads, ci.query_heads()},
                           std::tuple{k, ci.num_key_value_heads, ci.kv_groups()},
                           std::tuple{v, ci.num_key_value_heads, ci.kv_groups()}}) {
      auto src = sub_src(P);
      permute_rows(w, n * d, C, [&](int64_t r) { return src(r / d) * d + r % d; });
    }
  }
  const std::vector<float> after = logits_of(split, kTokens);
  EXPECT_LT(test::max_rel_error(after.data(), before.data(), before.size()), 1e-5);
}

TEST(Layout, HalfRopeIsAPermutationOfInterleavedRope) {
  const Config cg = gqa_config();
  Model gptj(cg);
  randomize(gptj, 12);
  Config ch = cg;
  ch.rope_interleaved = false;
  Model half(ch);
  std::copy(gptj.params.data(), gptj.params.data() + gptj.layout.total, half.params.data());
  const int64_t d = cg.head_dim, C = cg.hidden_size;
  for (const auto& L : half.layout.layers) {
    float* q = half.at(L.qkv);  // q and k rows only: values are not rotated
    const int64_t rows = (cg.num_attention_heads + cg.num_key_value_heads) * d;
    // within a sub-head: half position i <- pair member 2i, i + d/2 <- 2i + 1
    permute_rows(q, rows, C, [d](int64_t r) {
      const int64_t base = r / d * d, i = r % d;
      return base + (i < d / 2 ? 2 * i : 2 * (i - d / 2) + 1);
    });
  }
  const std::vector<float> a = logits_of(gptj, kTokens), b = logits_of(half, kTokens);
  EXPECT_LT(test::max_rel_error(b.data(), a.data(), a.size()), 1e-5);
}

}  // namespace
}  // namespace difftx
