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

}  // namespace
}  // namespace difftx
