// The one exp (kernels/simd.h), scalar and vector, against std::exp and against each other.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kernels/simd.h"

namespace difftx {
namespace {

TEST(VecMath, FastExpMatchesStdExp) {
  double worst = 0;
  for (float x = -87.f; x < 88.f; x += 3e-4f) {
    const double e = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(fast_exp(x) - e) / e);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(fast_exp(-INFINITY), 0.f);
  EXPECT_EQ(fast_exp(-100.f), 0.f);
  EXPECT_EQ(fast_exp(0.f), 1.f);
  EXPECT_TRUE(std::isfinite(fast_exp(1000.f)));
}

TEST(VecMath, VectorExpEqualsScalarExpBitForBit) {
  using simd::W;
  float in[W], out[W];
  int mismatches = 0;
  for (float x0 = -90.f; x0 < 90.f; x0 += 0.0137f * W) {
    for (int i = 0; i < W; ++i) in[i] = x0 + 0.0137f * static_cast<float>(i);
    simd::storeu(out, simd::vexp(simd::loadu(in)));
    for (int i = 0; i < W; ++i) {
      const float ref = fast_exp(in[i]);
      mismatches += std::memcmp(&out[i], &ref, 4) != 0;
    }
  }
  in[0] = -INFINITY;
  for (int i = 1; i < W; ++i) in[i] = 0.f;
  simd::storeu(out, simd::vexp(simd::loadu(in)));
  EXPECT_EQ(out[0], 0.f);
  EXPECT_EQ(out[1], 1.f);
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace difftx
