#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace difftx {

template <class F>
void quantize_causal_logits(F* P, int64_t T, int bits) {
  double absmax = 0;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j) absmax = std::max(absmax, std::fabs(static_cast<double>(P[i * T + j])));
  if (absmax == 0) return;
  const double levels = static_cast<double>((int64_t{1} << (bits - 1)) - 1);
  const double step = absmax / levels;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j)
      P[i * T + j] = static_cast<F>(std::nearbyint(static_cast<double>(P[i * T + j]) / step) * step);
}

template <class F>
void attention_forward_reference(const HeadGeometry& s, const F* Q, const F* K, const F* V,
                                 F lambda, F* O, AttentionSaved<F>& saved, int logit_bits) {
  check(logit_bits == 0 || (logit_bits >= 2 && logit_bits <= 16),
        "attention logit quantisation takes 2 to 16 bits, got ", logit_bits);
  const int64_t T = s.T, d = s.d, dv = s.dv(), rep = s.rep();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  saved.probs.assign(static_cast<size_t>(s.B * s.Pq * s.ncomp * T * T), F(0));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.Pq; ++h) {
      const int64_t g = h / rep;
      // Probabilities of each map.
      for (int64_t c = 0; c < s.ncomp; ++c) {
        const F* q = Q + s.q_off(b, h, c);
        const F* k = K + s.k_off(b, g, c);
        F* P = saved.probs.data() + s.map_index(b, h, c) * T * T;
        for (int64_t i = 0; i < T; ++i) {
          F* row = P + i * T;
          for (int64_t j = 0; j <= i; ++j) {
            double dot = 0.0;
            for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[i * d + e]) * k[j * d + e];
            row[j] = static_cast<F>(dot * scale);
          }
        }
        if (logit_bits > 0) quantize_causal_logits(P, T, logit_bits);
        for (int64_t i = 0; i < T; ++i) {
          F* row = P + i * T;
          double mx = -INFINITY;
          for (int64_t j = 0; j <= i; ++j) mx = std::max(mx, static_cast<double>(row[j]));
          double sum = 0.0;
          for (int64_t j = 0; j <= i; ++j) sum += std::exp(row[j] - mx);
          for (int64_t j = 0; j <= i; ++j) row[j] = static_cast<F>(std::exp(row[j] - mx) / sum);
        }
      }
      // O = (P1 - lambda P2) V
      const F* v = V + s.v_off(b, g);
      const F* P1 = saved.probs.data() + s.map_index(b, h, 0) * T * T;
      for (int64_t i = 0; i < T; ++i) {
        F* o = O + s.o_off(b, i, h);
        for (int64_t e = 0; e < dv; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j <= i; ++j) {
            double a = P1[i * T + j];
            if (s.ncomp == 2) a -= static_cast<double>(lambda) * P1[T * T + i * T + j];
            acc += a * v[j * dv + e];
          }
          o[e] = static_cast<F>(acc);
        }
      }
    }
  }
}

template <class F>
F attention_backward_reference(const HeadGeometry& s, const F* Q, const F* K, const F* V, F lambda,
                               const AttentionSaved<F>& saved, const F* dO, F* dQ, F* dK,
                               F* dV) {
  const int64_t T = s.T, d = s.d, dv = s.dv(), rep = s.rep();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  double dlambda = 0.0;
  // Parallel over (batch, key group): every head of a group writes the same dK and dV, so one
  // thread owns a group and there are no races.
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : dlambda)
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t g = 0; g < s.Pk; ++g) {
      const F* v = V + s.v_off(b, g);
      F* dv_g = dV + s.v_off(b, g);
      std::fill(dv_g, dv_g + T * dv, F(0));
      for (int64_t c = 0; c < s.ncomp; ++c) {
        F* dk = dK + s.k_off(b, g, c);
        std::fill(dk, dk + T * d, F(0));
      }
      std::vector<double> dP(static_cast<size_t>(T));  // dO_i . V_j for one query row
      for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {
        const F* P1 = saved.probs.data() + s.map_index(b, h, 0) * T * T;
        for (int64_t i = 0; i < T; ++i) {
          const F* dO_i = dO + s.o_off(b, i, h);
          // dV_j += (P1 - lambda P2)_ij dO_i ; dP_ij = dO_i . V_j
          for (int64_t j = 0; j <= i; ++j) {
            double a = P1[i * T + j];
            if (s.ncomp == 2) a -= static_cast<double>(lambda) * P1[T * T + i * T + j];
            double dot = 0.0;
            for (int64_t e = 0; e < dv; ++e) {
              dv_g[j * dv + e] += static_cast<F>(a * dO_i[e]);
              dot += static_cast<double>(dO_i[e]) * v[j * dv + e];
            }
            dP[j] = dot;
          }
          for (int64_t c = 0; c < s.ncomp; ++c) {
            const F* P = P1 + c * T * T + i * T;
            const double coef = c == 0 ? 1.0 : -static_cast<double>(lambda);
            if (c == 1) {
              for (int64_t j = 0; j <= i; ++j) dlambda -= P[j] * dP[j];
            }
            // softmax backward: dS_j = P_j (dA_j - sum_k P_k dA_k), dA = coef * dP
            double rowdot = 0.0;
            for (int64_t j = 0; j <= i; ++j) rowdot += P[j] * coef * dP[j];
            const F* q = Q + s.q_off(b, h, c) + i * d;
            const F* k = K + s.k_off(b, g, c);
            F* dq = dQ + s.q_off(b, h, c, i);
            F* dk = dK + s.k_off(b, g, c);
            std::fill(dq, dq + d, F(0));
            for (int64_t j = 0; j <= i; ++j) {
              const double dS = P[j] * (coef * dP[j] - rowdot) * scale;
              for (int64_t e = 0; e < d; ++e) {
                dq[e] += static_cast<F>(dS * k[j * d + e]);
                dk[j * d + e] += static_cast<F>(dS * q[e]);
              }
            }
          }
        }
      }
    }
  }
  return static_cast<F>(dlambda);
}

template <class F>
F lambda_forward(const F* q1, const F* k1, const F* q2, const F* k2, int64_t d, F lambda_init) {
  double a = 0.0, b = 0.0;
  for (int64_t i = 0; i < d; ++i) {
    a += static_cast<double>(q1[i]) * k1[i];
    b += static_cast<double>(q2[i]) * k2[i];
  }
  return static_cast<F>(std::exp(a) - std::exp(b) + lambda_init);
}

template <class F>
void lambda_backward(F dlambda, const F* q1, const F* k1, const F* q2, const F* k2, int64_t d,
                     F* dq1, F* dk1, F* dq2, F* dk2) {
  double a = 0.0, b = 0.0;
  for (int64_t i = 0; i < d; ++i) {
    a += static_cast<double>(q1[i]) * k1[i];
    b += static_cast<double>(q2[i]) * k2[i];
  }
  const double e1 = std::exp(a) * dlambda, e2 = -std::exp(b) * dlambda;
  for (int64_t i = 0; i < d; ++i) {
    dq1[i] += static_cast<F>(e1 * k1[i]);
    dk1[i] += static_cast<F>(e1 * q1[i]);
    dq2[i] += static_cast<F>(e2 * k2[i]);
    dk2[i] += static_cast<F>(e2 * q2[i]);
  }
}

#define DIFFTX_INSTANTIATE(F)                                                                  \
  template void attention_forward_reference<F>(const HeadGeometry&, const F*, const F*, const F*,  \
                                               F, F*, AttentionSaved<F>&, int);              \
  template void quantize_causal_logits<F>(F*, int64_t, int);                     \
  template F attention_backward_reference<F>(const HeadGeometry&, const F*, const F*, const F*, F, \
                                             const AttentionSaved<F>&, const F*, F*, F*, F*);  \
  template F lambda_forward<F>(const F*, const F*, const F*, const F*, int64_t, F);            \
  template void lambda_backward<F>(F, const F*, const F*, const F*, const F*, int64_t, F*, F*, \
                                   F*, F*);
DIFFTX_INSTANTIATE(float)
DIFFTX_INSTANTIATE(double)
#undef DIFFTX_INSTANTIATE

}  // namespace difftx
