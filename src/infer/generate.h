#pragma once
// Text generation on top of the KV cache: prefill each prompt, then sample one token at a
// time until max_tokens, the end-of-text id, or a stop string. Several prompts run as one
// batch (each sequence advances in the same pass over the weights). Output streams through
// a callback, decoded so that a UTF-8 character split across tokens is only emitted whole,
// and text that might be the start of a stop string is held back until it is not.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "infer/sampling.h"
#include "model/params.h"
#include "model/transformer.h"

namespace difftx {

class Tokenizer;

struct GenerateOptions {
  int64_t max_tokens = 128;
  SamplingOptions sampling;
  uint64_t seed = 0;
  std::vector<std::string> stops;
  bool sliding_window = false;  // when the context fills: keep the last half and continue
  // Ids that end a sequence; empty: the tokenizer's eos_id() (none without a tokenizer).
  std::vector<int32_t> eos_ids;
  RunOptions run;
};

// What a Hugging Face generation_config.json says; each field only when the file has it.
struct GenerationConfig {
  std::vector<int32_t> eos_ids;  // eos_token_id: an id or a list of ids
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int64_t> top_k;
};
// Throws Error naming the file and key for malformed JSON or a value of the wrong type.
GenerationConfig read_generation_config(const std::string& path);
// Sampling as transformers would run with this file: greedy unless do_sample, and then
// transformers' defaults (temperature 1, top_k 50, top_p 1) for the keys it leaves out.
SamplingOptions sampling_from(const GenerationConfig& g);

struct Generated {
  std::vector<int32_t> ids;  // generated ids (not the prompt; the end-of-text id excluded)
  std::string text;          // their text, cut before a stop string ("" without tokenizer)
  std::string finish_reason;  // "length", "eos" or "stop"
};

// Called with (prompt index, new text, new id) as each token is accepted.
using TokenCallback = std::function<void(int64_t, const std::string&, int32_t)>;

// tok may be null (ids only: stops are then ignored). Throws Error for an empty prompt, ids
// out of range, or prompt + max_tokens beyond the context without sliding_window.
std::vector<Generated> generate(const Model& model, const Tokenizer* tok,
                                const std::vector<std::vector<int32_t>>& prompts,
                                const GenerateOptions& opts, const TokenCallback& on_token = {});

}  // namespace difftx
