#pragma once
// Learning-rate schedule: linear warm-up from 0, then cosine or linear decay to
// min_ratio * peak at the last step.
#include <cstdint>
#include <string>

namespace difftx {

struct LrSchedule {
  double peak = 3e-4;
  int64_t warmup = 0, total = 1;
  double min_ratio = 0.1;
  bool cosine = true;  // false: linear decay
  double at(int64_t step) const;  // step counts from 0
};

}  // namespace difftx
