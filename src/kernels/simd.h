#pragma once
// The SIMD helpers every kernel shares, and the one exp of the engine.
//
// vf is one native register of floats (GCC vector extensions, so the code also builds, slower,
// without -march=native). exp_approx is written once for float and for vf: fast_exp (scalar,
// for loops the compiler vectorises itself) and vexp (explicit vectors, the flash kernel) give
// bit-identical results. tests/test_vec_math.cpp checks both against std::exp.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <bit>
#include <cstdint>

namespace difftx::simd {

#if defined(__AVX512F__)
constexpr int W = 16;
#elif defined(__AVX__)
constexpr int W = 8;
#else
constexpr int W = 4;
#endif
typedef float vf __attribute__((vector_size(W * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(W * sizeof(int32_t))));

inline vf loadu(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof(vf));
  return v;
}
inline void storeu(float* p, vf v) { __builtin_memcpy(p, &v, sizeof(vf)); }
// A broadcast (not vf{} + x, which costs an add since -0 + 0 != -0, nor an element loop,
// which GCC turns into W masked inserts).
inline vf splat(float x) {
#if defined(__AVX512F__)
  return _mm512_set1_ps(x);
#elif defined(__AVX__)
  return _mm256_set1_ps(x);
#elif defined(__SSE__)
  return _mm_set1_ps(x);
#else
  vf v;
  for (int i = 0; i < W; ++i) v[i] = x;
  return v;
#endif
}
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vi iota() {  // {0, 1, ..., W - 1}
  vi v;
  for (int i = 0; i < W; ++i) v[i] = i;
  return v;
}
inline float hsum(vf v) {
  float s = 0.f;
  for (int i = 0; i < W; ++i) s += v[i];
  return s;
}

// Left alone, GCC folds loads into memory operands of FMAs when registers are plentiful,
// loading the same vector many times; this pins x in a register.
inline void keep_in_register([[maybe_unused]] vf& x) {
#if defined(__GNUC__) && defined(__x86_64__)
  asm("" : "+v"(x));
#endif
}

namespace detail {
inline float lanes(float x, float) { return x; }
inline vf lanes(float x, vf) { return splat(x); }
inline int32_t to_int(float x) { return static_cast<int32_t>(x); }
inline vi to_int(vf x) { return __builtin_convertvector(x, vi); }
}  // namespace detail

// exp(x) to about 2 ulp (Cephes expf: Cody-Waite reduction x = n ln2 + r, degree-6
// polynomial for e^r, 2^n built from exponent bits and multiplied, so results down to the
// smallest normal are exact). 0 for x < -87.3 (including -inf: masked scores); clamped at 88.
template <class V>
inline V exp_approx(V x) {
  using detail::lanes;
  const V lo = lanes(-87.3f, V{}), hi = lanes(88.0f, V{});
  V xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const V magic = lanes(12582912.0f, V{});  // 1.5 * 2^23: adding it rounds to an integer
  const V n = (xc * 1.44269504088896341f + magic) - magic;
  V r = xc - n * 0.693359375f;  // ln2 split in two for an exact first product
  r = r + n * 2.12194440e-4f;
  V p = lanes(1.9875691500e-4f, V{});
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const V y = p * (r * r) + r + 1.0f;
  const auto scale = std::bit_cast<V>((detail::to_int(n) + 127) << 23);
  return x < lo ? V{} : y * scale;
}

inline vf vexp(vf x) { return exp_approx(x); }

}  // namespace difftx::simd

namespace difftx {
inline float fast_exp(float x) { return simd::exp_approx(x); }
}  // namespace difftx
