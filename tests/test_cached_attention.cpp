// The cached-attention kernel (decode, continued prefill) against the reference T x T
// attention over the whole sequence, which is the source of truth: the new tokens' outputs
// must equal the last rows of the reference output. Random inputs, awkward sizes: one key,
// one new token, several new tokens, sequences of different lengths in one batch, cache rows
// in a scrambled order, head widths, GQA ratios, differential and standard attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "core/error.h"
#include "kernels/cached_attention.h"
#include "test_util.h"

namespace difftx {
namespace {

struct CachedCase {
  int64_t Pq, Pk, ncomp, d, T_new;
  std::vector<int64_t> lengths;  // full length (cached + new) of each batch row
};

std::string name_of(const CachedCase& c) {
  std::string s = "Pq" + std::to_string(c.Pq) + "_Pk" + std::to_string(c.Pk) +
                  (c.ncomp == 2 ? "_diff" : "_std") + "_d" + std::to_string(c.d) + "_new" +
                  std::to_string(c.T_new) + "_len";
  for (int64_t n : c.lengths) s += "_" + std::to_string(n);
  return s;
}

class CachedAttentionTest : public ::testing::TestWithParam<CachedCase> {};

TEST_P(CachedAttentionTest, NewRowsEqualTheReferenceOverTheWholeSequence) {
  const CachedCase c = GetParam();
  const int64_t B = static_cast<int64_t>(c.lengths.size());
  const int64_t cap = *std::max_element(c.lengths.begin(), c.lengths.end()) + 3;
  const float lambda = 0.41f;
  Rng rng(static_cast<uint64_t>(c.Pq * 1009 + c.Pk * 101 + c.ncomp * 13 + c.d * 7 + c.T_new + cap));
  HeadGeometry cg;  // the cache: B sequences of capacity cap, batch rows stored in reverse
  cg.B = B, cg.T = cap, cg.Pq = c.Pq, cg.Pk = c.Pk, cg.ncomp = c.ncomp, cg.d = c.d;
  std::vector<float> Kc(static_cast<size_t>(cg.k_size()), 1e30f), Vc(Kc.size(), 1e30f);
  HeadGeometry qg = cg;  // the new tokens
  qg.T = c.T_new;
  std::vector<float> Qnew(static_cast<size_t>(qg.q_size()));
  std::vector<float> O(static_cast<size_t>(B * c.T_new * c.Pq * qg.dv()));
  std::vector<int64_t> seq(B), pos0(B);
  std::vector<std::vector<float>> want(B);  // reference output rows of the new tokens
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = c.lengths[b];
    ASSERT_GE(L, c.T_new);
    seq[b] = B - 1 - b;
    pos0[b] = L - c.T_new;
    HeadGeometry fg = cg;  // the whole sequence, for the reference
    fg.B = 1, fg.T = L;
    const auto Q = test::random_vector<float>(fg.q_size(), rng);
    const auto K = test::random_vector<float>(fg.k_size(), rng);
    const auto V = test::random_vector<float>(fg.k_size(), rng);
    std::vector<float> Oref(static_cast<size_t>(L * c.Pq * fg.dv()));
    AttentionSaved<float> saved;
    attention_forward_reference(fg, Q.data(), K.data(), V.data(), lambda, Oref.data(), saved);
    want[b].assign(Oref.end() - c.T_new * c.Pq * fg.dv(), Oref.end());
    for (int64_t g = 0; g < c.Pk; ++g) {
      for (int64_t m = 0; m < c.ncomp; ++m)
        std::copy_n(K.data() + fg.k_off(0, g, m), L * c.d, Kc.data() + cg.k_off(seq[b], g, m));
      std::copy_n(V.data() + fg.v_off(0, g), L * fg.dv(), Vc.data() + cg.v_off(seq[b], g));
    }
    for (int64_t h = 0; h < c.Pq; ++h)
      for (int64_t m = 0; m < c.ncomp; ++m)
        std::copy_n(Q.data() + fg.q_off(0, h, m, pos0[b]), c.T_new * c.d,
                    Qnew.data() + qg.q_off(b, h, m));
  }
  cached_attention_forward(qg, cg, Qnew.data(), Kc.data(), Vc.data(), seq.data(), pos0.data(),
                           lambda, O.data());
  for (int64_t b = 0; b < B; ++b) {
    const float* got = O.data() + qg.o_off(b, 0);
    double worst = 0;
    for (size_t i = 0; i < want[b].size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[b][i]));
    EXPECT_LT(worst, 2e-5) << "row " << b;  // |O| <= 1 + lambda; float sums over <= 200 keys
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CachedAttentionTest,
    ::testing::Values(CachedCase{1, 1, 1, 8, 1, {1}}, CachedCase{2, 2, 2, 10, 1, {1, 7}},
                      CachedCase{4, 2, 2, 16, 1, {65, 3, 130}},
                      CachedCase{4, 1, 1, 20, 1, {33, 64}},
                      CachedCase{3, 3, 1, 64, 5, {5, 70}},
                      CachedCase{2, 1, 2, 32, 17, {17, 100, 18}},
                      CachedCase{8, 2, 2, 64, 2, {200}}),
    [](const auto& info) { return name_of(info.param); });

TEST(CachedAttention, RefusesRowsOutsideTheCache) {
  HeadGeometry g;
  g.B = 1, g.T = 4;
  std::vector<float> buf(64), O(8);
  const int64_t seq = 0, too_far = 2, bad_seq = 1, zero = 0;
  HeadGeometry q = g;
  q.T = 3;
  EXPECT_THROW(cached_attention_forward(q, g, buf.data(), buf.data(), buf.data(), &seq, &too_far,
                                        0.f, O.data()),
               Error);
  EXPECT_THROW(cached_attention_forward(q, g, buf.data(), buf.data(), buf.data(), &bad_seq, &zero,
                                        0.f, O.data()),
               Error);
}

}  // namespace
}  // namespace difftx
