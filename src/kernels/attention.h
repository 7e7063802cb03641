#pragma once
// Causal attention in the canonical head-major layout that qkv_to_heads (rope.h) produces:
//
//   Q [B, Pq, ncomp, T, d]   Pq query heads, each with ncomp maps (2 differential, 1 standard)
//   K [B, Pk, ncomp, T, d]   Pk key groups; query head h reads group h / (Pq / Pk)
//   V [B, Pk, T, dv]         dv = ncomp * d (a differential value head is 2d wide)
//   O [B*T, Pq*dv]           token-major, ready for the output projection
//
// Differential:  O_h = (softmax(Q1 K1^T s) - lambda softmax(Q2 K2^T s)) V   (before head norm)
// Standard:      O_h = softmax(Q K^T s) V
//
// This is the narrow interface a fused kernel replaces: forward saves whatever its backward
// needs in an AttentionSaved; the reference here keeps the full T x T probability maps.
#include <cstdint>
#include <vector>

namespace difftx {

// The one description of the canonical head geometry: every kernel, the KV cache (a tensor
// of the same layout with T = its capacity) and analysis index through these offsets.
struct HeadGeometry {
  int64_t B = 1, T = 1;
  int64_t Pq = 1, Pk = 1;  // query heads, key/value groups (Pq % Pk == 0)
  int64_t ncomp = 1;       // 2 for differential attention
  int64_t d = 1;           // width of one query/key sub-head
  int64_t dv() const { return ncomp * d; }
  int64_t rep() const { return Pq / Pk; }
  int64_t group_of(int64_t h) const { return h / rep(); }
  // Element offsets of row t of query map (h, c), key map (g, c), value head g, and of head
  // h's columns in output row (b, t).
  // Index of query map (h, c) of sequence b among all B * Pq * ncomp maps.
  int64_t map_index(int64_t b, int64_t h, int64_t c) const { return (b * Pq + h) * ncomp + c; }
  int64_t q_off(int64_t b, int64_t h, int64_t c, int64_t t = 0) const {
    return (map_index(b, h, c) * T + t) * d;
  }
  int64_t k_off(int64_t b, int64_t g, int64_t c, int64_t t = 0) const {
    return (((b * Pk + g) * ncomp + c) * T + t) * d;
  }
  int64_t v_off(int64_t b, int64_t g, int64_t t = 0) const { return ((b * Pk + g) * T + t) * dv(); }
  int64_t o_off(int64_t b, int64_t t, int64_t h = 0) const { return (b * T + t) * Pq * dv() + h * dv(); }
  int64_t q_size() const { return B * Pq * ncomp * T * d; }  // floats of Q (and of O)
  int64_t k_size() const { return B * Pk * ncomp * T * d; }  // floats of K (and of V)
};

template <class F>
struct AttentionSaved {
  std::vector<F> probs;  // [B, Pq, ncomp, T, T], zero above the diagonal
};

// logit_bits in [2, 16] quantises each map's logits (q.k / sqrt(d), the causal entries of one
// sequence, head and map) before the softmax: symmetric round-to-nearest on 2^(bits-1) - 1
// levels of that map's absmax (dynamic absmax, the paper's Fig. 8). Evaluation only: the
// backward treats the quantised logits as exact. 0: no quantisation.
template <class F>
void attention_forward_reference(const HeadGeometry& dims, const F* Q, const F* K, const F* V,
                                 F lambda, F* O, AttentionSaved<F>& saved, int logit_bits = 0);
// The quantisation above, in place on a T x T map (row i holds keys 0..i).
template <class F>
void quantize_causal_logits(F* P, int64_t T, int bits);

// Writes dQ, dK, dV (overwritten) and returns dL/dlambda (0 for standard attention).
template <class F>
F attention_backward_reference(const HeadGeometry& dims, const F* Q, const F* K, const F* V,
                               F lambda, const AttentionSaved<F>& saved, const F* dO, F* dQ,
                               F* dK, F* dV);

// lambda = exp(<q1,k1>) - exp(<q2,k2>) + lambda_init, and its backward into the four vectors.
template <class F>
F lambda_forward(const F* q1, const F* k1, const F* q2, const F* k2, int64_t d, F lambda_init);
template <class F>
void lambda_backward(F dlambda, const F* q1, const F* k1, const F* q2, const F* k2, int64_t d,
                     F* dq1, F* dk1, F* dq2, F* dk2);

}  // namespace difftx
