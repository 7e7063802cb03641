// Incremental decoding with the KV cache gives the logits of a full recomputation at every
// step, for both head layouts, GQA and the standard baseline.
#include <gtest/gtest.h>

#include "infer/kv_cache.h"
#include "model/transformer.h"
#include "test_util.h"

namespace difftx {
namespace {

struct CacheCase {
  ModelType type;
  bool split, rope_interleaved, affine;
  int64_t heads, kv;
};

class KvCacheTest : public ::testing::TestWithParam<CacheCase> {};

TEST_P(KvCacheTest, DecodeMatchesFullRecomputation) {
  const CacheCase k = GetParam();
  Config c;
  c.model_type = k.type;
  c.vocab_size = 31;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = k.heads;
  c.num_key_value_heads = k.kv;
  c.head_dim = 6;
  c.diff_split_layout = k.split;
  c.rope_interleaved = k.rope_interleaved;
  c.diff_norm_affine = k.affine;
  c.max_position_embeddings = 32;
  Model m(c);
  Rng rng(3);
  for (size_t i = 0; i < m.layout.total; ++i) m.params.data()[i] = static_cast<float>(0.4 * rng.normal());
  std::vector<int32_t> tokens;
  for (int i = 0; i < 13; ++i) tokens.push_back(static_cast<int32_t>(rng.below(31)));

  const int64_t prompt = 5;
  KvSession session(m, 20);
  std::vector<float> got = session.prefill({tokens.begin(), tokens.begin() + prompt});
  for (int64_t t = prompt; t <= static_cast<int64_t>(tokens.size()); ++t) {
    Activations full;
    forward(m, tokens.data(), nullptr, 1, t, full);
    const float* want = full.logits.data() + (t - 1) * c.vocab_size;
    ASSERT_EQ(session.length(), t);
    EXPECT_LT(test::max_rel_error(got.data(), want, got.size()), 1e-4) << "step " << t;
    if (t < static_cast<int64_t>(tokens.size())) got = session.decode(tokens[t]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, KvCacheTest,
    ::testing::Values(CacheCase{ModelType::kDiffLlama, false, true, true, 4, 4},
                      CacheCase{ModelType::kDiffLlama, true, false, false, 8, 4},
                      CacheCase{ModelType::kDiffLlama, false, true, true, 8, 2},
                      CacheCase{ModelType::kLlama, false, false, false, 4, 2}));

}  // namespace
}  // namespace difftx
