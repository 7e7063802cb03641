// The vectorisable exp against std::exp.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/vec_math.h"

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

}  // namespace
}  // namespace difftx
