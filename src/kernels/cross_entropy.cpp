#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "kernels/simd.h"

namespace difftx {
namespace {
double row_logsumexp(const double* x, int64_t n) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(x[i] - mx);
  return mx + std::log(sum);
}
// float rows: vectorised max and sum of fast_exp, the sum accumulated in 16 float lanes.
double row_logsumexp(const float* x, int64_t n) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += fast_exp(x[i] - mx);
  return static_cast<double>(mx) + std::log(static_cast<double>(sum));
}
template <class F>
F exp_of(F x) {
  if constexpr (sizeof(F) == sizeof(float)) return fast_exp(x);
  else return std::exp(x);
}
int64_t count_targets(const int32_t* targets, int64_t rows) {
  int64_t n = 0;
  for (int64_t r = 0; r < rows; ++r) n += targets[r] >= 0;
  return n;
}
}  // namespace

template <class F>
double cross_entropy_forward(const F* logits, const int32_t* targets, int64_t rows,
                             int64_t vocab, int64_t* counted) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) continue;
    const F* x = logits + r * vocab;
    total += row_logsumexp(x, vocab) - static_cast<double>(x[targets[r]]);
  }
  const int64_t n = count_targets(targets, rows);
  if (counted) *counted = n;
  return n > 0 ? total / static_cast<double>(n) : 0.0;
}

template <class F>
void cross_entropy_backward(const F* logits, const int32_t* targets, int64_t rows,
                            int64_t vocab, double dloss, F* dlogits) {
  const int64_t n = count_targets(targets, rows);
  const double k = n > 0 ? dloss / static_cast<double>(n) : 0.0;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const F* x = logits + r * vocab;
    F* dx = dlogits + r * vocab;
    if (targets[r] < 0) {
      std::fill(dx, dx + vocab, F(0));
      continue;
    }
    const F lse = static_cast<F>(row_logsumexp(x, vocab));
    const F kf = static_cast<F>(k);
#pragma omp simd
    for (int64_t i = 0; i < vocab; ++i) dx[i] = kf * exp_of<F>(x[i] - lse);
    dx[targets[r]] -= kf;
  }
}

template double cross_entropy_forward<float>(const float*, const int32_t*, int64_t, int64_t,
                                             int64_t*);
template double cross_entropy_forward<double>(const double*, const int32_t*, int64_t, int64_t,
                                              int64_t*);
template void cross_entropy_backward<float>(const float*, const int32_t*, int64_t, int64_t,
                                            double, float*);
template void cross_entropy_backward<double>(const double*, const int32_t*, int64_t, int64_t,
                                             double, double*);

}  // namespace difftx
