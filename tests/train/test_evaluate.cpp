// The one evaluation procedure: consecutive windows over a prefix of the stream, token-weighted
// mean, checked against an independent sum of per-window forward passes.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "io/tokenizer.h"
#include "model/presets.h"
#include "model/transformer.h"
#include "test_util.h"
#include "train/dataset.h"
#include "train/evaluate.h"

namespace difftx {
namespace {

class Evaluate : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "text.txt") << "It is a truth universally acknowledged, that a single man "
                                        "in possession of a good fortune, must be in want of a wife.";
    tok_ = make_byte_tokenizer();
    model_ = std::make_unique<Model>(preset_config("tiny-diff", tok_->vocab_size()));
    init_parameters(*model_, 3);
    data_ = TokenData::open(dir_ / "text.txt", *tok_, dir_ / "cache");
  }
  // Sum over windows of T predictions (the last one shorter) of the mean loss of one forward
  // pass over exactly that window, weighted by its length.
  double reference(int64_t T, int64_t total) const {
    double nll = 0;
    Activations acts;
    for (int64_t start = 0; start < total; start += T) {
      const int64_t len = std::min(T, total - start);
      std::vector<int32_t> in(len), tg(len);
      for (int64_t t = 0; t < len; ++t) {
        in[t] = data_->at(start + t);
        tg[t] = data_->at(start + t + 1);
      }
      nll += forward(*model_, in.data(), tg.data(), 1, len, acts, RunOptions{}) * static_cast<double>(len);
    }
    return nll / static_cast<double>(total);
  }
  test::TempDir dir_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<TokenData> data_;
};

TEST_F(Evaluate, IsTheTokenWeightedMeanOverConsecutiveWindows) {
  const int64_t n = data_->size() - 1;
  ASSERT_GT(n, 100);
  for (int64_t T : {16, 33}) {
    for (int64_t batch : {1, 3}) {
      EvalSpec spec;
      spec.seq = T;
      spec.batch = batch;
      const EvalResult all = evaluate_loss(*model_, *data_, spec, tok_.get());
      EXPECT_EQ(all.tokens, n);
      int64_t separators = 0;  // end-of-text ids stand for no bytes
      for (int64_t i = 1; i <= n; ++i) separators += data_->at(i) == tok_->eos_id();
      EXPECT_EQ(all.bytes, n - separators) << "byte tokens are one byte each";
      EXPECT_NEAR(all.loss, reference(T, n), 1e-5) << "T " << T << " batch " << batch;
      spec.max_tokens = 40;
      const EvalResult prefix = evaluate_loss(*model_, *data_, spec);
      EXPECT_EQ(prefix.tokens, 40);
      EXPECT_EQ(prefix.bytes, 0) << "no tokenizer, no bytes";
      EXPECT_NEAR(prefix.loss, reference(T, 40), 1e-5);
    }
  }
}

TEST_F(Evaluate, OutOfRangeValuesNameTheirField) {
  const auto field_of = [&](EvalSpec spec) {
    try {
      evaluate_loss(*model_, *data_, spec);
    } catch (const Error& e) {
      return e.field();
    }
    return std::string("(no error)");
  };
  EvalSpec s;
  s.seq = 0;
  EXPECT_EQ(field_of(s), "seq");
  s.seq = model_->config.max_position_embeddings + 1;
  EXPECT_EQ(field_of(s), "seq");
  s.seq = 8;
  s.batch = 0;
  EXPECT_EQ(field_of(s), "batch");
  s.batch = 1;
  s.max_tokens = -1;
  EXPECT_EQ(field_of(s), "max_tokens");
}

// AR-Hit on a hand-made window: "a b c a b d a b c" predicts b after a three times; the
// bigram (a, b) is new at t = 0 and seen at t = 3 and t = 6; (b, c) is new at t = 1 and seen at
// t = 7; (b, d) at t = 4 is new. An unscored target is never a hit.
TEST(ArHit, FlagsBigramsSeenEarlierInTheWindow) {
  const int32_t a = 1, b = 2, c = 3, d = 4;
  const std::vector<int32_t> in = {a, b, c, a, b, d, a, b};
  std::vector<int32_t> target = {b, c, a, b, d, a, b, c};
  std::vector<uint8_t> hit(in.size());
  ar_hit_flags(in.data(), target.data(), 8, hit.data());
  EXPECT_EQ(hit, (std::vector<uint8_t>{0, 0, 0, 1, 0, 0, 1, 1}));
  target[6] = -1;  // not scored: not a hit, and (a, b) still seen from t = 3
  ar_hit_flags(in.data(), target.data(), 8, hit.data());
  EXPECT_EQ(hit, (std::vector<uint8_t>{0, 0, 0, 1, 0, 0, 0, 1}));
}

// The split is of the same scored tokens: the token-weighted mean of the AR-Hit loss and the
// other loss is the overall loss, and the AR-Hit loss equals an independent recomputation.
TEST_F(Evaluate, ArHitSplitPartitionsTheScoredTokens) {
  EvalSpec spec;
  spec.seq = 40;
  spec.batch = 2;
  spec.split_ar_hit = true;
  const EvalResult r = evaluate_loss(*model_, *data_, spec, tok_.get());
  ASSERT_GT(r.ar_hit_tokens, 5);
  ASSERT_LT(r.ar_hit_tokens, r.tokens);
  const double hits = static_cast<double>(r.ar_hit_tokens);
  EXPECT_NEAR((r.ar_hit_loss * hits + r.other_loss * (static_cast<double>(r.tokens) - hits)) /
                  static_cast<double>(r.tokens),
              r.loss, 1e-9 * r.loss);
  double nll = 0;
  int64_t count = 0;
  Activations acts;
  for (int64_t start = 0; start < r.tokens; start += spec.seq) {
    const int64_t len = std::min<int64_t>(spec.seq, r.tokens - start);
    std::vector<int32_t> in(len), tg(len);
    for (int64_t t = 0; t < len; ++t) {
      in[t] = data_->at(start + t);
      tg[t] = data_->at(start + t + 1);
    }
    forward(*model_, in.data(), nullptr, 1, len, acts, RunOptions{}, PassOptions{Keep::kNothing});
    for (int64_t t = 0; t < len; ++t) {
      bool seen = false;
      for (int64_t s = 0; s < t; ++s) seen = seen || (in[s] == in[t] && tg[s] == tg[t]);
      if (!seen) continue;
      const float* row = acts.logits.data() + t * model_->config.vocab_size;
      double mx = row[0], z = 0;
      for (int64_t v = 0; v < model_->config.vocab_size; ++v) mx = std::max<double>(mx, row[v]);
      for (int64_t v = 0; v < model_->config.vocab_size; ++v) z += std::exp(row[v] - mx);
      nll += std::log(z) + mx - row[tg[t]];
      ++count;
    }
  }
  EXPECT_EQ(count, r.ar_hit_tokens);
  EXPECT_NEAR(nll / static_cast<double>(count), r.ar_hit_loss, 1e-5 * r.ar_hit_loss);
}

TEST_F(Evaluate, QuantisedAttentionLogitsAreAnEvaluationOption) {
  EvalSpec spec;
  spec.seq = 32;
  const double exact = evaluate_loss(*model_, *data_, spec, tok_.get()).loss;
  spec.attention_logit_bits = 16;
  EXPECT_NEAR(evaluate_loss(*model_, *data_, spec, tok_.get()).loss, exact, 1e-4 * exact);
  // A pass kept for backward refuses it (the quantisation has no gradient here).
  std::vector<int32_t> in(8, 65), tg(8, 66);
  Activations acts;
  RunOptions run;
  run.attention_logit_bits = 8;
  EXPECT_THROW(forward(*model_, in.data(), tg.data(), 1, 8, acts, run), Error);
}

}  // namespace
}  // namespace difftx
