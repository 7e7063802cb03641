#pragma once
// Choosing the next token from logits: repetition penalty (CTRL-style: positive logits of
// tokens already in the sequence are divided by the penalty, negative ones multiplied),
// temperature (0 = greedy), top-k, then top-p (nucleus) and a draw from the seeded generator.
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace difftx {

struct SamplingOptions {
  double temperature = 0.8;  // 0: greedy (argmax)
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // in (0, 1]; 1: off
  double repetition_penalty = 1.0;  // >= 1 discourages repeats; 1: off
};

// Throws Error naming the flag when a value is out of range (NaN included).
void validate(const SamplingOptions& o);

// Draws one of the ids 0..vocab-1 from logits[0..vocab-1] (a caller may pass fewer ids than the
// model has, to exclude the ones its tokenizer cannot decode). `history` holds the ids of the
// sequence so far (for the repetition penalty).
int32_t sample_token(const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                     const SamplingOptions& o, Rng& rng);

}  // namespace difftx
