#include "kernels/pair_combine.h"

#include <cmath>

namespace difftx {

template <class F>
void pair_lambda_forward(const F* z, F* lambda, int64_t count) {
  for (int64_t i = 0; i < count; ++i) lambda[i] = F(1) / (F(1) + std::exp(-z[i]));
}

template <class F>
void pair_combine_forward(const F* pre, const F* lambda, F* out, int64_t rows, int64_t n,
                          int64_t d) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < n; ++h) {
      const F* a1 = pre + (r * 2 * n + 2 * h) * d;
      const F* a2 = a1 + d;
      const F lam = lambda[r * n + h];
      F* o = out + (r * n + h) * d;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) o[i] = a1[i] - lam * a2[i];
    }
  }
}

template <class F>
void pair_combine_backward(const F* dout, const F* pre, const F* lambda, F* dpre, F* dz,
                           int64_t rows, int64_t n, int64_t d) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < n; ++h) {
      const F* a2 = pre + (r * 2 * n + 2 * h + 1) * d;
      const F* g = dout + (r * n + h) * d;
      F* d1 = dpre + (r * 2 * n + 2 * h) * d;
      F* d2 = d1 + d;
      const F lam = lambda[r * n + h];
      F dlam = 0;
      for (int64_t i = 0; i < d; ++i) {
        d1[i] = g[i];
        d2[i] = -lam * g[i];
        dlam -= g[i] * a2[i];
      }
      dz[r * n + h] = dlam * lam * (F(1) - lam);
    }
  }
}

#define DIFFTX_INSTANTIATE(F)                                                              \
  template void pair_lambda_forward<F>(const F*, F*, int64_t);                             \
  template void pair_combine_forward<F>(const F*, const F*, F*, int64_t, int64_t, int64_t); \
  template void pair_combine_backward<F>(const F*, const F*, const F*, F*, F*, int64_t,     \
                                         int64_t, int64_t);
DIFFTX_INSTANTIATE(float)
DIFFTX_INSTANTIATE(double)
#undef DIFFTX_INSTANTIATE

}  // namespace difftx
