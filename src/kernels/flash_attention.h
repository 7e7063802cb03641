#pragma once
// Fused causal attention for CPU (float), forward and backward, that never builds a T x T
// matrix. Same dims, layouts and semantics as attention_forward_reference /
// attention_backward_reference (attention.h), which stay the source of truth in tests:
//
//   Q [B, Pq, ncomp, T, d]   K [B, Pk, ncomp, T, d]   V [B, Pk, T, dv]   O, dO [B*T, Pq*dv]
//   query head h reads key/value group h / (Pq / Pk); scale 1/sqrt(d); causal.
//   ncomp == 2:  O = A1 V - lambda A2 V  (differential, dv = 2d);  ncomp == 1:  O = A V.
//
// Forward tiles queries and keys (64 x 64), keeps an online softmax per map and saves the row
// logsumexp; backward recomputes each probability tile from it (PyTorch's CPU
// FlashAttentionKernel is the model). Extra memory is O(T) per head: see FlashSaved and
// flash_attention_extra_bytes.
#include <cstdint>
#include <vector>

#include "kernels/attention.h"

namespace difftx {

struct FlashSaved {
  std::vector<float> lse;     // [B, Pq, ncomp, T]: log sum_j exp(s_ij) of each map's row
  std::vector<float> o_maps;  // [B, Pq, ncomp, T, dv]: per-map outputs O_c = A_c V (backward
                              // needs rowsum(dO * O_c), and dlambda = -sum(dO * O2))
};

// Writes O (overwritten) and fills `saved`. lambda is ignored when ncomp == 1.
void flash_attention_forward(const HeadGeometry& dims, const float* Q, const float* K,
                             const float* V, float lambda, float* O, FlashSaved& saved);

// Writes dQ, dK, dV (overwritten) and returns dL/dlambda (0 for standard attention).
float flash_attention_backward(const HeadGeometry& dims, const float* Q, const float* K,
                               const float* V, float lambda, const FlashSaved& saved,
                               const float* dO, float* dQ, float* dK, float* dV);

// Peak memory the kernel allocates beyond its inputs and outputs, in bytes, for `nthreads`
// OpenMP threads: the saved state plus the larger of forward's and backward's scratch.
int64_t flash_attention_extra_bytes(const HeadGeometry& dims, int nthreads);

}  // namespace difftx
