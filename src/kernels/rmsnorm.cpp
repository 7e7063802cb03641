#include "kernels/rmsnorm.h"

#include <cmath>
#include <vector>

#include <omp.h>

namespace difftx {

// Row sums are accumulated in F across SIMD lanes (#pragma omp simd reduction), which keeps
// float rows vectorised; rows are at most a few thousand wide, where lane-wise float sums
// lose far less than the tests' tolerances.

template <class F>
void rmsnorm_forward(const F* x, const F* w, F scale, F eps, F* y, F* inv_rms, int64_t rows,
                     int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const F* xr = x + r * n;
    F* yr = y + r * n;
    F ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const F inv = F(1) / std::sqrt(ss / static_cast<F>(n) + eps);
    inv_rms[r] = inv;
    const F s = inv * scale;
    if (w) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * s * w[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * s;
    }
  }
}

template <class F>
void rmsnorm_backward(const F* dy, const F* x, const F* w, F scale, const F* inv_rms, F* dx,
                      F* dw, int64_t rows, int64_t n) {
  const bool want_dw = w != nullptr && dw != nullptr;
  const int nthreads = omp_get_max_threads();
  // Per-thread partial sums of dw, reduced at the end: no atomics, deterministic.
  std::vector<F> dw_part(want_dw ? static_cast<size_t>(nthreads) * n : 0, F(0));
  std::vector<F> ones(w ? 0 : static_cast<size_t>(n), F(1));
  const F* wv = w ? w : ones.data();
#pragma omp parallel
  {
    F* my_dw = want_dw ? dw_part.data() + static_cast<int64_t>(omp_get_thread_num()) * n : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const F* xr = x + r * n;
      const F* dyr = dy + r * n;
      F* dxr = dx + r * n;
      const F inv = inv_rms[r];
      // g = dy * w * scale; dx += inv * g - inv^3 * x * mean(g * x)
      F gx = 0;
#pragma omp simd reduction(+ : gx)
      for (int64_t i = 0; i < n; ++i) gx += dyr[i] * wv[i] * xr[i];
      gx *= scale;
      const F a = inv * scale, c = inv * inv * inv * gx / static_cast<F>(n);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dxr[i] += a * dyr[i] * wv[i] - c * xr[i];
      if (my_dw) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) my_dw[i] += dyr[i] * xr[i] * a;
      }
    }
  }
  if (want_dw) {
    for (int t = 0; t < nthreads; ++t)
      for (int64_t i = 0; i < n; ++i) dw[i] += dw_part[t * n + i];
  }
}

template void rmsnorm_forward<float>(const float*, const float*, float, float, float*, float*,
                                     int64_t, int64_t);
template void rmsnorm_forward<double>(const double*, const double*, double, double, double*,
                                      double*, int64_t, int64_t);
template void rmsnorm_backward<float>(const float*, const float*, const float*, float,
                                      const float*, float*, float*, int64_t, int64_t);
template void rmsnorm_backward<double>(const double*, const double*, const double*, double,
                                       const double*, double*, double*, int64_t, int64_t);

}  // namespace difftx
