// Quantised attention logits (the paper's Fig. 8): the rounding rule on a hand-made map, and
// the reference kernel with the quantisation against an independent quantise-then-attend.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "kernels/attention.h"
#include "test_util.h"

namespace difftx {
namespace {

TEST(LogitQuant, RoundsEachCausalEntryToTheNearestLevelOfTheMapsAbsmax) {
  // Row 0: key 0; row 1: keys 0, 1; above the diagonal (7) is not a logit and stays.
  std::vector<double> P = {-1.0, 7.0,
                           0.2, -0.4};
  quantize_causal_logits(P.data(), 2, 3);  // 3 bits: levels -3..3 of absmax / 3
  EXPECT_DOUBLE_EQ(P[0], -1.0);
  EXPECT_DOUBLE_EQ(P[1], 7.0);
  EXPECT_DOUBLE_EQ(P[2], 1.0 / 3);   // 0.6 levels -> 1
  EXPECT_DOUBLE_EQ(P[3], -1.0 / 3);  // -1.2 levels -> -1
  std::vector<double> zero = {0.0, 0.0, 0.0, 0.0};
  quantize_causal_logits(zero.data(), 2, 4);  // all zero: nothing to scale, stays zero
  for (double z : zero) EXPECT_EQ(z, 0.0);
}

// softmax of the quantised logits, written out for one standard head.
TEST(LogitQuant, ReferenceKernelAttendsOverTheQuantisedLogits) {
  HeadGeometry g;
  g.B = 2, g.T = 7, g.Pq = 2, g.Pk = 1, g.ncomp = 2, g.d = 5;
  Rng rng(11);
  const auto Q = test::random_vector<double>(g.q_size(), rng, 2.0);
  const auto K = test::random_vector<double>(g.k_size(), rng, 2.0);
  const auto V = test::random_vector<double>(g.B * g.Pk * g.T * g.dv(), rng);
  const double lambda = 0.3;
  for (int bits : {2, 4, 8}) {
    std::vector<double> O(g.B * g.T * g.Pq * g.dv());
    AttentionSaved<double> saved;
    attention_forward_reference(g, Q.data(), K.data(), V.data(), lambda, O.data(), saved, bits);
    const double levels = std::pow(2.0, bits - 1) - 1;
    for (int64_t b = 0; b < g.B; ++b)
      for (int64_t h = 0; h < g.Pq; ++h) {
        // Both maps: logits, their absmax, rounding, softmax.
        std::vector<std::vector<double>> probs(2, std::vector<double>(g.T * g.T, 0.0));
        for (int64_t c = 0; c < 2; ++c) {
          std::vector<double> L(g.T * g.T, 0.0);
          double absmax = 0;
          for (int64_t i = 0; i < g.T; ++i)
            for (int64_t j = 0; j <= i; ++j) {
              double dot = 0;
              for (int64_t e = 0; e < g.d; ++e)
                dot += Q[g.q_off(b, h, c, i) + e] * K[g.k_off(b, 0, c, j) + e];
              L[i * g.T + j] = dot / std::sqrt(static_cast<double>(g.d));
              absmax = std::max(absmax, std::fabs(L[i * g.T + j]));
            }
          for (int64_t i = 0; i < g.T; ++i) {
            double sum = 0;
            for (int64_t j = 0; j <= i; ++j) {
              const double q = std::round(L[i * g.T + j] * levels / absmax) * absmax / levels;
              probs[c][i * g.T + j] = std::exp(q);
              sum += probs[c][i * g.T + j];
            }
            for (int64_t j = 0; j <= i; ++j) probs[c][i * g.T + j] /= sum;
          }
        }
        for (int64_t i = 0; i < g.T; ++i)
          for (int64_t e = 0; e < g.dv(); ++e) {
            double want = 0;
            for (int64_t j = 0; j <= i; ++j)
              want += (probs[0][i * g.T + j] - lambda * probs[1][i * g.T + j]) *
                      V[g.v_off(b, 0, j) + e];
            EXPECT_NEAR(O[g.o_off(b, i, h) + e], want, 1e-12) << "bits " << bits;
          }
      }
  }
}

TEST(LogitQuant, SixteenBitsIsCloseToExactAndTwoBitsIsNot) {
  HeadGeometry g;
  g.B = 1, g.T = 33, g.Pq = 3, g.Pk = 3, g.ncomp = 1, g.d = 8;
  Rng rng(5);
  const auto Q = test::random_vector<float>(g.q_size(), rng, 2.0);
  const auto K = test::random_vector<float>(g.k_size(), rng, 2.0);
  const auto V = test::random_vector<float>(g.B * g.Pk * g.T * g.dv(), rng);
  const auto run = [&](int bits) {
    std::vector<float> O(g.B * g.T * g.Pq * g.dv());
    AttentionSaved<float> saved;
    attention_forward_reference(g, Q.data(), K.data(), V.data(), 0.0f, O.data(), saved, bits);
    return O;
  };
  const auto exact = run(0), b16 = run(16), b2 = run(2);
  double err16 = 0, err2 = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    err16 = std::max(err16, static_cast<double>(std::fabs(b16[i] - exact[i])));
    err2 = std::max(err2, static_cast<double>(std::fabs(b2[i] - exact[i])));
  }
  EXPECT_LT(err16, 1e-3);
  EXPECT_GT(err2, 1e-2);
}

}  // namespace
}  // namespace difftx
