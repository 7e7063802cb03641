#pragma once
// Held-out evaluation over a whole token stream: consecutive windows of T predicted tokens
// (each window sees the previous token as context start), mean loss, perplexity and bits per
// byte of the text the predicted tokens decode to.
#include <cstdint>

#include "kernels/matmul.h"
#include "model/params.h"
#include "train/dataset.h"

namespace difftx {

class Tokenizer;

struct EvalResult {
  double loss = 0, perplexity = 0, bits_per_byte = 0;
  int64_t tokens = 0, bytes = 0;
};

// T: window length (<= max_position_embeddings); max_tokens > 0 limits the tokens scored.
EvalResult evaluate_stream(const Model& model, const Tokenizer& tok, const TokenData& data,
                           int64_t T, int64_t batch, int64_t max_tokens, Precision precision);

}  // namespace difftx
