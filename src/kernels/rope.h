#pragma once
// From the fused q/k/v projection output to attention's canonical layout (attention.h),
// applying rotary position embeddings to queries and keys on the way.
//
// The projection output per token is [q: nq sub-heads | k: nk sub-heads | v: nk sub-heads],
// each sub-head d wide. Which canonical (head, map) a sub-head s belongs to depends on the
// layout (SPEC section 1):
//   interleaved: s -> (s / 2, s % 2)        split: s -> (s % P, s / P)      standard: (s, 0)
// and value sub-head s of group g, half c, lands at columns [c*d, c*d + d) of V's row.
#include <cstdint>
#include <vector>

#include "kernels/attention.h"

namespace difftx {

struct RopeTable {
  int64_t T = 0, half = 0;  // positions, d / 2
  bool interleaved = false; // GPT-J pairs (2i, 2i+1); else Llama pairs (i, i + d/2)
  std::vector<double> inv_freq;  // [half]: pair i turns by t * inv_freq[i] at position t
  std::vector<double> cos, sin;  // [T, half], computed in double once
};
// From per-pair inverse frequencies (model/config.h: rope_inverse_frequencies, which applies
// any rope scaling), or the unscaled theta^(-2i/d).
RopeTable make_rope_table(int64_t T, const std::vector<double>& inv_freq, bool interleaved);
RopeTable make_rope_table(int64_t T, int64_t d, double theta, bool interleaved);

struct HeadMapping {
  bool split = false;  // split (HF DiffLlama) vs interleaved (official) for ncomp == 2
};

// The canonical (head or group, map) of projection sub-head s, with P heads or groups.
struct HeadSlot {
  int64_t head, comp;
};
inline HeadSlot head_slot(int64_t s, int64_t P, int64_t ncomp, HeadMapping map) {
  if (ncomp == 1) return {s, 0};
  return map.split ? HeadSlot{s % P, s / P} : HeadSlot{s / 2, s % 2};
}

// qkv: [B*T, (Pq*ncomp + 2*Pk*ncomp) * d]. Writes Q, K, V (canonical, overwritten).
// Token t of sequence b sits at position pos0[b] + t (pos0 null: position t), which the rope
// table must cover: a KV cache continues a sequence where it stopped.
template <class F>
void qkv_to_heads(const HeadGeometry& dims, HeadMapping map, const RopeTable& rope, const F* qkv,
                  F* Q, F* K, F* V, const int64_t* pos0 = nullptr);

// The exact transpose: dqkv (overwritten) from dQ, dK, dV.
template <class F>
void qkv_to_heads_backward(const HeadGeometry& dims, HeadMapping map, const RopeTable& rope,
                           const F* dQ, const F* dK, const F* dV, F* dqkv);

// Rotates one sub-head vector of width 2*rope.half at position t, in place.
// inverse = true applies the transposed rotation (used in backward).
template <class F>
void rope_rotate(const RopeTable& rope, int64_t t, F* x, bool inverse);

}  // namespace difftx
