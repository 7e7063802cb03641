// The oneDNN-backed gemm against the plain reference loop, on awkward sizes and every
// transpose combination, with a tolerance derived from the data (gemma.cpp's rule).
#include <gtest/gtest.h>

#include <cfloat>

#include "kernels/matmul.h"
#include "test_util.h"

namespace difftx {
namespace {

struct GemmCase {
  int64_t M, N, K;
};

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, MatchesReferenceForAllTransposes) {
  const auto [M, N, K] = GetParam();
  Rng rng(static_cast<uint64_t>(M * 1000 + N * 10 + K));
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      const auto A = test::random_vector<float>(M * K, rng);
      const auto B = test::random_vector<float>(K * N, rng);
      auto C = test::random_vector<float>(M * N, rng);
      auto C_ref = C;
      const int64_t lda = ta ? M : K, ldb = tb ? K : N;
      const float alpha = 0.75f, beta = ta ? 0.5f : 0.f;
      gemm<float>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), N);
      gemm_reference<float>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta,
                            C_ref.data(), N);
      // |error| <= 20 * K * eps * max|a| * max|b| (+ the beta term's rounding).
      float amax = 0, bmax = 0;
      for (float x : A) amax = std::max(amax, std::abs(x));
      for (float x : B) bmax = std::max(bmax, std::abs(x));
      const double tol = 20.0 * static_cast<double>(K + 1) * FLT_EPSILON * amax * bmax + 1e-6;
      for (int64_t i = 0; i < M * N; ++i)
        ASSERT_NEAR(C[i], C_ref[i], tol) << "ta=" << ta << " tb=" << tb << " at " << i;
    }
  }
}

// The decoding path (few rows, Y = X W^T) against the reference.
TEST(Gemm, FewRowsPathMatchesReference) {
  Rng rng(9);
  for (const int64_t M : {1, 2, 3, 4})
    for (const auto [N, K] : {std::pair<int64_t, int64_t>{1, 1}, {37, 19}, {300, 129}, {1031, 512}}) {
      const auto X = test::random_vector<float>(M * K, rng), W = test::random_vector<float>(N * K, rng);
      std::vector<float> Y(M * N), Y_ref(M * N);
      linear_forward(X.data(), W.data(), Y.data(), M, N, K);
      gemm_reference<float>(false, true, M, N, K, 1.f, X.data(), K, W.data(), K, 0.f, Y_ref.data(), N);
      float xmax = 0, wmax = 0;
      for (float v : X) xmax = std::max(xmax, std::abs(v));
      for (float v : W) wmax = std::max(wmax, std::abs(v));
      const double tol = 20.0 * static_cast<double>(K) * FLT_EPSILON * xmax * wmax;
      for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(Y[i], Y_ref[i], tol) << M << "x" << N << "x" << K;
    }
}

INSTANTIATE_TEST_SUITE_P(AwkwardSizes, GemmTest,
                         ::testing::Values(GemmCase{1, 1, 1}, GemmCase{1, 17, 3},
                                           GemmCase{7, 1, 5}, GemmCase{13, 29, 31},
                                           GemmCase{64, 65, 63}, GemmCase{100, 37, 129},
                                           GemmCase{5, 3, 0}));

}  // namespace
}  // namespace difftx
