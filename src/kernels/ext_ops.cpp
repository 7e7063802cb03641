#include "kernels/ext_ops.h"

#include <cmath>
#include <vector>

namespace difftx {
namespace {

// Entry (i, j) of head h's effective map in sequence b.
template <class F>
double effective(const HeadGeometry& g, const F* probs, F lambda, int64_t b, int64_t h,
                 int64_t i, int64_t j) {
  const int64_t TT = g.T * g.T;
  const F* P1 = probs + g.map_index(b, h, 0) * TT;
  double e = P1[i * g.T + j];
  if (g.ncomp == 2) e -= static_cast<double>(lambda) * P1[TT + i * g.T + j];
  return e;
}

}  // namespace

template <class F>
void gelu_forward(const F* x, F* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<F>(0.5 * v * (1.0 + std::erf(v * M_SQRT1_2)));
  }
}

template <class F>
void gelu_backward(const F* x, const F* dy, F* dx, int64_t n) {
  const double inv_sqrt_2pi = 0.5 * M_2_SQRTPI * M_SQRT1_2;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    const double d = 0.5 * (1.0 + std::erf(v * M_SQRT1_2)) + v * inv_sqrt_2pi * std::exp(-0.5 * v * v);
    dx[i] = static_cast<F>(dy[i] * d);
  }
}

template <class F>
void sigmoid_forward(const F* x, F* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<F>(1.0 / (1.0 + std::exp(-static_cast<double>(x[i]))));
}

template <class F>
void attention_mass_forward(const HeadGeometry& g, const F* probs, F lambda, F* mass) {
  const int64_t T = g.T;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < g.B; ++b) {
    std::vector<double> col(static_cast<size_t>(T), 0.0);
    for (int64_t h = 0; h < g.Pq; ++h)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) col[j] += effective(g, probs, lambda, b, h, i, j);
    for (int64_t t = 0; t < T; ++t)
      mass[b * T + t] = static_cast<F>(col[t] / static_cast<double>(g.Pq * (T - t)));
  }
}

template <class F>
void attention_mass_backward(const HeadGeometry& g, const F* dmass, F* dE) {
  const int64_t T = g.T;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t h = 0; h < g.Pq; ++h) {
      F* d = dE + (b * g.Pq + h) * T * T;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j)
          d[i * T + j] += static_cast<F>(dmass[b * T + j] / static_cast<double>(g.Pq * (T - j)));
    }
}

template <class F>
double attention_norm_reg_forward(const HeadGeometry& g, const F* probs, F lambda, double beta) {
  const int64_t T = g.T;
  double total = 0.0;
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : total)
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t h = 0; h < g.Pq; ++h) {
      double l1 = 0.0, sq = 0.0;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          const double e = effective(g, probs, lambda, b, h, i, j);
          l1 += std::abs(e);
          sq += e * e;
        }
      total += l1 / static_cast<double>(T) - beta * std::sqrt(sq / static_cast<double>(T));
    }
  return total / static_cast<double>(g.B * g.Pq);
}

template <class F>
void attention_norm_reg_backward(const HeadGeometry& g, const F* probs, F lambda, double beta,
                                 double scale, F* dE) {
  const int64_t T = g.T;
  const double s = scale / static_cast<double>(g.B * g.Pq);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t h = 0; h < g.Pq; ++h) {
      double sq = 0.0;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          const double e = effective(g, probs, lambda, b, h, i, j);
          sq += e * e;
        }
      // d|E|_2 / dE = E / |E|_2 (taken as 0 for an all-zero map)
      const double l2_coef = sq > 0 ? beta / std::sqrt(sq * static_cast<double>(T)) : 0.0;
      F* d = dE + (b * g.Pq + h) * T * T;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          const double e = effective(g, probs, lambda, b, h, i, j);
          const double sign = e > 0 ? 1.0 : (e < 0 ? -1.0 : 0.0);
          d[i * T + j] += static_cast<F>(s * (sign / static_cast<double>(T) - l2_coef * e));
        }
    }
}

template <class F>
F effective_map_backward(const HeadGeometry& g, const F* Q, const F* K, F lambda,
                         const F* probs, const F* dE, F* dQ, F* dK) {
  const int64_t T = g.T, d = g.d, rep = g.rep();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  double dlambda = 0.0;
  // Parallel over (batch, key group): the heads of a group share dK, so one thread owns it.
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : dlambda)
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t grp = 0; grp < g.Pk; ++grp)
      for (int64_t h = grp * rep; h < (grp + 1) * rep; ++h) {
        const F* dEh = dE + (b * g.Pq + h) * T * T;
        for (int64_t c = 0; c < g.ncomp; ++c) {
          const F* P = probs + g.map_index(b, h, c) * T * T;
          const double coef = c == 0 ? 1.0 : -static_cast<double>(lambda);
          const F* q = Q + g.q_off(b, h, c);
          const F* k = K + g.k_off(b, grp, c);
          F* dq = dQ + g.q_off(b, h, c);
          F* dk = dK + g.k_off(b, grp, c);
          for (int64_t i = 0; i < T; ++i) {
            // softmax backward of row i with dA = coef * dE
            double rowdot = 0.0;
            for (int64_t j = 0; j <= i; ++j) rowdot += P[i * T + j] * coef * dEh[i * T + j];
            if (c == 1)
              for (int64_t j = 0; j <= i; ++j) dlambda -= P[i * T + j] * dEh[i * T + j];
            for (int64_t j = 0; j <= i; ++j) {
              const double dS = P[i * T + j] * (coef * dEh[i * T + j] - rowdot) * scale;
              for (int64_t e = 0; e < d; ++e) {
                dq[i * d + e] += static_cast<F>(dS * k[j * d + e]);
                dk[j * d + e] += static_cast<F>(dS * q[i * d + e]);
              }
            }
          }
        }
      }
  return static_cast<F>(dlambda);
}

#define DIFFTX_INSTANTIATE(F)                                                                  \
  template void gelu_forward<F>(const F*, F*, int64_t);                                       \
  template void gelu_backward<F>(const F*, const F*, F*, int64_t);                            \
  template void sigmoid_forward<F>(const F*, F*, int64_t);                                    \
  template void attention_mass_forward<F>(const HeadGeometry&, const F*, F, F*);              \
  template void attention_mass_backward<F>(const HeadGeometry&, const F*, F*);                \
  template double attention_norm_reg_forward<F>(const HeadGeometry&, const F*, F, double);    \
  template void attention_norm_reg_backward<F>(const HeadGeometry&, const F*, F, double,      \
                                               double, F*);                                   \
  template F effective_map_backward<F>(const HeadGeometry&, const F*, const F*, F, const F*,  \
                                       const F*, F*, F*);
DIFFTX_INSTANTIATE(float)
DIFFTX_INSTANTIATE(double)
#undef DIFFTX_INSTANTIATE

}  // namespace difftx
