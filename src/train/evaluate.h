#pragma once
// The one evaluation procedure, behind both `val_loss` in metrics.jsonl and `difftx eval`:
// the first max_tokens predicted tokens of the stream (all of them when 0) are cut into
// consecutive windows of seq predictions. Window w feeds tokens [w*seq, w*seq + seq) and
// predicts tokens [w*seq + 1, w*seq + seq + 1); the last window may be shorter. The loss is the
// mean cross-entropy over every predicted token (token-weighted, so a short last window counts
// by its length). Windows are run `batch` at a time; the batch changes only the speed (and the
// result by float round-off). Perplexity = exp(loss); bits per byte divides the total in bits
// by the bytes of text the predicted tokens decode to.
//
// During training, val_loss is evaluate_loss with seq = the run's seq, batch = its batch and
// max_tokens = eval_windows * seq, so `difftx eval --seq S --batch B --max-tokens N` on the
// validation text reports the same loss for the same weights.
#include <cstdint>

#include "kernels/matmul.h"
#include "model/params.h"
#include "train/dataset.h"

namespace difftx {

class Tokenizer;

struct EvalSpec {
  int64_t seq = 1024;     // predictions per window, in [1, max_position_embeddings]
  int64_t batch = 4;      // windows per forward pass, in [1, 4096]
  int64_t max_tokens = 0; // predicted tokens scored (0: the whole stream)
  Precision precision = Precision::kFP32;
  bool split_ar_hit = false;  // also the loss on AR-Hit tokens and on the others (below)
  int attention_logit_bits = 0;  // RunOptions::attention_logit_bits (0: exact)
};

struct EvalResult {
  double loss = 0, perplexity = 0, bits_per_byte = 0;
  int64_t tokens = 0, bytes = 0;
  // With split_ar_hit: mean loss (nats per token) over the AR-Hit predictions and over the
  // rest, and how many of the scored tokens are AR-Hit.
  double ar_hit_loss = 0, other_loss = 0;
  int64_t ar_hit_tokens = 0;
};

// AR-Hit (the paper's Table 6, after Zoology, Arora et al. 2023): the prediction of token
// t + 1 is an AR-Hit when the bigram (token t, token t + 1) already occurred earlier in the
// same window, so that recalling it from the context predicts the token. in[t] is token t of
// the window, target[t] token t + 1 (-1: not scored, never a hit); hit (overwritten) gets T
// flags.
void ar_hit_flags(const int32_t* in, const int32_t* target, int64_t T, uint8_t* hit);

// Throws Error naming the field (seq, batch, max_tokens) of a value out of range, or for token
// ids outside the model's vocabulary. `tok` (may be null) gives bytes and bits per byte.
EvalResult evaluate_loss(const Model& model, const TokenData& data, const EvalSpec& spec,
                         const Tokenizer* tok = nullptr);

}  // namespace difftx
