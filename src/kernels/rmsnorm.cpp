#include "kernels/rmsnorm.h"

#include <cmath>
#include <vector>

#include <omp.h>

namespace difftx {

template <class F>
void rmsnorm_forward(const F* x, const F* w, F scale, F eps, F* y, F* inv_rms, int64_t rows,
                     int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const F* xr = x + r * n;
    F* yr = y + r * n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const F inv = static_cast<F>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    inv_rms[r] = inv;
    const F s = inv * scale;
    if (w) {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * s * w[i];
    } else {
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
  std::vector<double> dw_part(want_dw ? static_cast<size_t>(nthreads) * n : 0, 0.0);
#pragma omp parallel
  {
    double* my_dw = want_dw ? dw_part.data() + static_cast<int64_t>(omp_get_thread_num()) * n
                            : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const F* xr = x + r * n;
      const F* dyr = dy + r * n;
      F* dxr = dx + r * n;
      const double inv = inv_rms[r];
      // g = dy * w * scale; dx = inv * g - inv^3 * x * mean(g * x)
      double gx = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double g = static_cast<double>(dyr[i]) * (w ? w[i] : F(1)) * scale;
        gx += g * xr[i];
      }
      const double c = inv * inv * inv * gx / static_cast<double>(n);
      for (int64_t i = 0; i < n; ++i) {
        const double g = static_cast<double>(dyr[i]) * (w ? w[i] : F(1)) * scale;
        dxr[i] += static_cast<F>(inv * g - c * xr[i]);
      }
      if (my_dw)
        for (int64_t i = 0; i < n; ++i) my_dw[i] += static_cast<double>(dyr[i]) * xr[i] * inv * scale;
    }
  }
  if (want_dw) {
    for (int t = 0; t < nthreads; ++t)
      for (int64_t i = 0; i < n; ++i) dw[i] += static_cast<F>(dw_part[t * n + i]);
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
