#pragma once
// The canonical head geometry (kernels/attention.h) of a model config.
#include <cstdint>

#include "kernels/attention.h"
#include "model/config.h"

namespace difftx {

inline HeadGeometry head_geometry(const Config& c, int64_t B, int64_t T) {
  HeadGeometry g;
  g.B = B;
  g.T = T;
  g.Pq = c.query_heads();
  g.Pk = c.kv_groups();
  g.ncomp = c.ncomp();
  g.d = c.head_dim;
  return g;
}

}  // namespace difftx
