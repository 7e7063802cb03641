#include "model/kv_cache.h"

#include "core/error.h"
#include "core/memory_limit.h"
#include "model/geometry.h"

namespace difftx {

KvCache::KvCache(const Config& c, int64_t capacity, int64_t sequences) {
  check(capacity >= 1 && capacity <= c.max_position_embeddings, "context of ", capacity,
        " tokens is outside [1, ", c.max_position_embeddings, "] (max_position_embeddings)");
  check(sequences >= 1, "a KV cache needs at least one sequence");
  // Keys and values of every layer, refused before allocating when they cannot fit.
  check_fits_in_memory(uint128(2) * uint128(c.num_hidden_layers) * uint128(c.kv_width()) *
                           uint128(capacity) * uint128(sequences) * sizeof(float),
                       "a KV cache of " + std::to_string(sequences) + " x " +
                           std::to_string(capacity) + " tokens",
                       "use a shorter context (prompt + max_tokens) or fewer prompts");
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
