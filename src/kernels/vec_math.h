#pragma once
// exp for float that the compiler can vectorise (std::exp calls into libm one value at a
// time unless -ffast-math, which would also break NaN checks). Cody-Waite range reduction
// x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r and 2^n by exponent bits.
// Relative error < 3e-7 on [-87, 88]; 0 below -87.3, clamped at 88 (tests/test_vec_math.cpp checks it against std::exp).
#include <cstdint>
#include <cstring>

namespace difftx {

inline float fast_exp(float x) {
  const bool underflow = x < -87.3f;  // also -inf (masked scores): exactly 0
  x = underflow ? -87.3f : (x > 88.f ? 88.f : x);
  const float n = __builtin_roundf(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;  // ln2 split in two for an exact first product
  r = r + n * 2.12194440e-4f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return underflow ? 0.f : p * scale;
}

}  // namespace difftx
