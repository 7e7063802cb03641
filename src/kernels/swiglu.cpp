#include "kernels/swiglu.h"

#include <cmath>

#include "kernels/simd.h"

namespace difftx {
namespace {
template <class F>
F sigmoid(F x) {
  if constexpr (sizeof(F) == sizeof(float)) return 1.f / (1.f + fast_exp(-x));
  else return F(1) / (F(1) + std::exp(-x));
}
}  // namespace

template <class F>
void swiglu_forward(const F* gu, F* act, int64_t rows, int64_t f) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const F* g = gu + r * 2 * f;
    const F* u = g + f;
    F* a = act + r * f;
#pragma omp simd
    for (int64_t i = 0; i < f; ++i) {
      const F sig = sigmoid(g[i]);
      a[i] = g[i] * sig * u[i];
    }
  }
}

template <class F>
void swiglu_backward(const F* gu, const F* dact, F* dgu, int64_t rows, int64_t f) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const F* g = gu + r * 2 * f;
    const F* u = g + f;
    const F* da = dact + r * f;
    F* dg = dgu + r * 2 * f;
    F* du = dg + f;
#pragma omp simd
    for (int64_t i = 0; i < f; ++i) {
      const F sig = sigmoid(g[i]);
      du[i] = da[i] * g[i] * sig;
      dg[i] = da[i] * u[i] * sig * (F(1) + g[i] * (F(1) - sig));
    }
  }
}

template void swiglu_forward<float>(const float*, float*, int64_t, int64_t);
template void swiglu_forward<double>(const double*, double*, int64_t, int64_t);
template void swiglu_backward<float>(const float*, const float*, float*, int64_t, int64_t);
template void swiglu_backward<double>(const double*, const double*, double*, int64_t, int64_t);

}  // namespace difftx
