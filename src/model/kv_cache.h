#pragma once
// Keys and values of every layer for a batch of sequences, in the canonical layout
// (kernels/attention.h) with T = the capacity: K [S, Pk, ncomp, cap, d], V [S, Pk, cap, dv].
// A forward pass given a cache appends its tokens' keys and values at each sequence's current
// length and attends over the cache (model/transformer.h).
#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "model/config.h"

namespace difftx {

struct KvCache {
  HeadGeometry geom;                       // B = sequences, T = capacity
  std::vector<std::vector<float>> K, V;    // per layer
  std::vector<int64_t> len;                // [S] positions filled per sequence

  KvCache() = default;
  // Throws Error when capacity is outside [1, max_position_embeddings] or sequences < 1.
  KvCache(const Config& c, int64_t capacity, int64_t sequences);
  int64_t capacity() const { return geom.T; }
  int64_t sequences() const { return geom.B; }
  int64_t bytes() const;
};

}  // namespace difftx
