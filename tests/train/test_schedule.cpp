// LrSchedule: linear warm-up from peak / warmup, then cosine or linear decay to min_ratio * peak
// at the last step.
#include <gtest/gtest.h>

#include <cmath>

#include "train/schedule.h"

namespace difftx {
namespace {

TEST(LrSchedule, WarmupRisesLinearlyToThePeak) {
  const LrSchedule s{1e-3, 4, 20, 0.1, true};
  EXPECT_DOUBLE_EQ(s.at(0), 0.25e-3);
  EXPECT_DOUBLE_EQ(s.at(1), 0.50e-3);
  EXPECT_DOUBLE_EQ(s.at(3), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(4), 1e-3) << "decay starts from the peak";
}

TEST(LrSchedule, CosineAndLinearEndAtTheMinimumOnTheLastStep) {
  for (bool cosine : {true, false}) {
    const LrSchedule s{2e-3, 2, 12, 0.25, cosine};
    EXPECT_DOUBLE_EQ(s.at(11), 0.5e-3) << "cosine " << cosine;
    EXPECT_DOUBLE_EQ(s.at(100), 0.5e-3) << "after the end it stays at the minimum";
    for (int64_t t = 3; t < 12; ++t) EXPECT_LT(s.at(t), s.at(t - 1)) << "decreasing, t " << t;
  }
  // Decay over steps 1..11 (progress (t - 1) / 10): halfway, cosine and linear agree at 0.5.
  const LrSchedule c{1.0, 1, 12, 0.0, true}, l{1.0, 1, 12, 0.0, false};
  EXPECT_NEAR(c.at(6), 0.5, 1e-12);
  EXPECT_NEAR(l.at(6), 0.5, 1e-12);
  EXPECT_NEAR(c.at(3), 0.5 * (1 + std::cos(M_PI * 0.2)), 1e-12);
  EXPECT_NEAR(l.at(3), 0.8, 1e-12);
}

TEST(LrSchedule, MinRatioOneIsConstantAfterWarmupWhateverTheTotal) {
  // What lets a run be extended with --steps and still match a longer run from the start.
  const LrSchedule short_run{1e-3, 0, 10, 1.0, true}, long_run{1e-3, 0, 1000, 1.0, true};
  for (int64_t t = 0; t < 10; ++t) EXPECT_DOUBLE_EQ(short_run.at(t), long_run.at(t));
}

}  // namespace
}  // namespace difftx
