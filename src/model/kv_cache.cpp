#include "model/kv_cache.h"

#include "core/error.h"
#include "model/geometry.h"

namespace difftx {

KvCache::KvCache(const Config& c, int64_t capacity, int64_t sequences) {
  check(capacity >= 1 && capacity <= c.max_position_embeddings, "context of ", capacity,
        " tokens is outside [1, ", c.max_position_embeddings, "] (max_position_embeddings)");
  check(sequences >= 1, "a KV cache needs at least one sequence");
  geom = head_geometry(c, sequences, capacity);
  K.assign(static_cast<size_t>(c.num_hidden_layers),
           std::vector<float>(static_cast<size_t>(geom.k_size())));
  V = K;
  len.assign(static_cast<size_t>(sequences), 0);
}

int64_t KvCache::bytes() const {
  return static_cast<int64_t>(2 * K.size() * sizeof(float)) * geom.k_size();
}

}  // namespace difftx
