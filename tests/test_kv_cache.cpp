// Incremental decoding with the KV cache gives the logits of a full recomputation at every
// step, for both head layouts, GQA and the standard baseline.
#include <gtest/gtest.h>

#include "core/error.h"
#include "infer/kv_session.h"
#include "io/checkpoint.h"
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

Config config_of(const CacheCase& k) {
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
  return c;
}

TEST_P(KvCacheTest, DecodeMatchesFullRecomputation) {
  const Config c = config_of(GetParam());
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

// One layer recipe, three policies: a pass that continues cached sequences with several
// tokens each (two rows in one batch, cache rows out of order) gives, for every new token, the
// logits of a training-style pass over the whole sequence, and keeps one layer of scratch.
TEST_P(KvCacheTest, ContinuedPrefillMatchesFullRecomputation) {
  const Config c = config_of(GetParam());
  Model m(c);
  Rng rng(5);
  for (size_t i = 0; i < m.layout.total; ++i) m.params.data()[i] = static_cast<float>(0.4 * rng.normal());
  std::vector<int32_t> seq_a, seq_b;  // 7 + 4 and 3 + 4 tokens
  for (int i = 0; i < 11; ++i) seq_a.push_back(static_cast<int32_t>(rng.below(31)));
  for (int i = 0; i < 7; ++i) seq_b.push_back(static_cast<int32_t>(rng.below(31)));
  KvCache cache(c, 16, 3);
  Activations acts;
  PassOptions pass;
  pass.keep = Keep::kNothing;
  pass.logits = LogitRows::kLast;
  pass.cache = &cache;
  const int64_t row_a = 2, row_b = 0;
  pass.cache_rows = &row_a;
  forward(m, seq_a.data(), nullptr, 1, 7, acts, {}, pass);
  pass.cache_rows = &row_b;
  forward(m, seq_b.data(), nullptr, 1, 3, acts, {}, pass);
  EXPECT_EQ(acts.layers.size(), 1u);
  EXPECT_EQ(acts.logits.size(), static_cast<size_t>(c.vocab_size));
  // Both continue by 4 tokens in one pass: rows [a, b], all logits.
  const std::vector<int64_t> rows = {row_a, row_b};
  std::vector<int32_t> next(seq_a.begin() + 7, seq_a.end());
  next.insert(next.end(), seq_b.begin() + 3, seq_b.end());
  pass.cache_rows = rows.data();
  pass.logits = LogitRows::kAll;
  forward(m, next.data(), nullptr, 2, 4, acts, {}, pass);
  EXPECT_EQ(cache.len[row_a], 11);
  EXPECT_EQ(cache.len[row_b], 7);
  EXPECT_EQ(cache.len[1], 0);
  const std::vector<float> got = acts.logits;
  const std::vector<int32_t>* seqs[2] = {&seq_a, &seq_b};
  for (int b = 0; b < 2; ++b) {
    Activations full;
    const int64_t L = static_cast<int64_t>(seqs[b]->size());
    forward(m, seqs[b]->data(), nullptr, 1, L, full);
    for (int64_t t = 0; t < 4; ++t) {
      const float* want = full.logits.data() + (L - 4 + t) * c.vocab_size;
      EXPECT_LT(test::max_rel_error(got.data() + (b * 4 + t) * c.vocab_size, want, c.vocab_size),
                1e-4)
          << "row " << b << " token " << t;
    }
  }
  // A full cache refuses more tokens with an error, not a write past its end.
  pass.cache_rows = &row_a;
  pass.logits = LogitRows::kLast;
  const std::vector<int32_t> six(6, 1);
  EXPECT_THROW(forward(m, six.data(), nullptr, 1, 6, acts, {}, pass), Error);
  EXPECT_EQ(cache.len[row_a], 11);
}

// The ablations of SPEC section 2 and DIFF V2 (golden checkpoints of tests/golden) decode through the same
// recipe: cached logits equal full recomputation at every step.
class KvCacheGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KvCacheGoldenTest, DecodeMatchesFullRecomputation) {
  const auto m = load_model(std::string(DIFFTX_SOURCE_DIR) + "/tests/golden/" + GetParam());
  const Config& c = m->config;
  Rng rng(9);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 12; ++i) tokens.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  KvSession session(*m, 16);
  std::vector<float> got = session.prefill({tokens.begin(), tokens.begin() + 4});
  for (int64_t t = 4; t <= static_cast<int64_t>(tokens.size()); ++t) {
    Activations full;
    forward(*m, tokens.data(), nullptr, 1, t, full);
    EXPECT_LT(test::max_rel_error(got.data(), full.logits.data() + (t - 1) * c.vocab_size,
                                  got.size()),
              1e-4)
        << "step " << t;
    if (t < static_cast<int64_t>(tokens.size())) got = session.decode(tokens[t]);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, KvCacheGoldenTest,
                         ::testing::Values("diff_no_groupnorm", "diff_lambda_init_const",
                                           "llama_groupnorm", "diffv2_rope_gptj",
                                           "diffv2_gqa_rope_half",
                                           "diffv2_gqa_rope_gptj_tied"));

INSTANTIATE_TEST_SUITE_P(
    Layouts, KvCacheTest,
    ::testing::Values(CacheCase{ModelType::kDiffLlama, false, true, true, 4, 4},
                      CacheCase{ModelType::kDiffLlama, true, false, false, 8, 4},
                      CacheCase{ModelType::kDiffLlama, false, true, true, 8, 2},
                      CacheCase{ModelType::kLlama, false, false, false, 4, 2},
                      CacheCase{ModelType::kDiffLlamaV2, false, true, false, 4, 2},
                      CacheCase{ModelType::kDiffLlamaV2, false, false, false, 4, 4}));

}  // namespace
}  // namespace difftx
