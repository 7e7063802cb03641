#pragma once
// Attention of new tokens over a KV cache: decoding (one new token per sequence) and a prefill
// that continues a sequence. Same semantics as attention_forward_reference (attention.h),
// which is its source of truth in tests:
//
//   Q       canonical [B, Pq, ncomp, T, d] of the T new tokens of B sequences (geometry q)
//   Kc, Vc  the cache: canonical K [S, Pk, ncomp, cap, d], V [S, Pk, cap, dv] of S sequences
//           (geometry cache: B = S, T = cap), already holding the new tokens' keys and values
//   seq[b]  the cache sequence of batch row b;  pos0[b]  the position of its first new token
//   O       [B*T, Pq*dv] token-major; token t of row b attends cache positions 0..pos0[b]+t.
//
// ncomp == 2: O = A1 V - lambda A2 V (before the head norm); ncomp == 1: O = A V.
// Work is split over (row, key group) pairs: the query heads of a group share each read of a
// cached key and value row. Each task keeps its scores in a per-thread buffer.
#include <cstdint>

#include "kernels/attention.h"

namespace difftx {

void cached_attention_forward(const HeadGeometry& q, const HeadGeometry& cache, const float* Q,
                              const float* Kc, const float* Vc, const int64_t* seq,
                              const int64_t* pos0, float lambda, float* O);

}  // namespace difftx
