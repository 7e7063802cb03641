#pragma once
// The ops of the design deck's extensions (model/extensions.h, docs/variants.md): GELU,
// sigmoid, and functions of the effective attention maps that the reference kernel keeps
// (kernels/attention.h: probs [B, Pq, ncomp, T, T]; the effective map of head h is
// E = P1 - lambda P2 for differential attention, E = P for standard attention):
//
//   mass[b, t] = 1/Pq sum_h  1/(T - t) sum_{i >= t} E_bh[i, t]    attention token t receives
//   reg        = 1/(B Pq) sum_{b,h} ( |E_bh|_1 / T - beta |E_bh|_2 / sqrt(T) )
//
// (|.|_1: sum of absolute entries, |.|_2: Frobenius norm, both over the causal entries.)
// Backward functions add d(loss)/dE into dE [B, Pq, T, T]; effective_map_backward sends dE
// through the softmax into Q, K and lambda. Templated on float and double (gradient checks).
#include <cstdint>

#include "kernels/attention.h"

namespace difftx {

template <class F>
void gelu_forward(const F* x, F* y, int64_t n);  // exact: x * Phi(x)
// dx = dy * gelu'(x) (overwritten).
template <class F>
void gelu_backward(const F* x, const F* dy, F* dx, int64_t n);
template <class F>
void sigmoid_forward(const F* x, F* y, int64_t n);

template <class F>
void attention_mass_forward(const HeadGeometry& g, const F* probs, F lambda, F* mass);
template <class F>
void attention_mass_backward(const HeadGeometry& g, const F* dmass, F* dE);

template <class F>
double attention_norm_reg_forward(const HeadGeometry& g, const F* probs, F lambda, double beta);
// Adds scale * d(reg)/dE into dE.
template <class F>
void attention_norm_reg_backward(const HeadGeometry& g, const F* probs, F lambda, double beta,
                                 double scale, F* dE);

// Adds the gradient of a loss with d(loss)/dE = dE into dQ and dK (canonical layout) and
// returns its d(loss)/dlambda (0 for standard attention).
template <class F>
F effective_map_backward(const HeadGeometry& g, const F* Q, const F* K, F lambda,
                         const F* probs, const F* dE, F* dQ, F* dK);

}  // namespace difftx
