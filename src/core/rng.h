#pragma once
// A small, portable, seedable random generator (xoshiro256**, seeded by SplitMix64), so
// that the same seed gives the same numbers on every compiler and library.
#include <cstdint>

namespace difftx {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  double uniform();        // in [0, 1)
  double normal();         // standard normal (Box-Muller, both values used)
  uint64_t below(uint64_t n);  // uniform in [0, n), n > 0

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace difftx
