#pragma once
// The classification head on a difftx language model: the final RMSNorm's output (the same
// stream the LM head reads) pooled over each sequence, then
//   linear:  logits = W p + b
//   mlp:     logits = W2 dropout(tanh(W1 dropout(p) + b1)) + b2     (the two-layer head with
//            dropout of the design deck, as RoBERTa's classification head)
// Pooling: "last" (the last real token: a causal model has read the whole text there) or
// "mean" (over the real tokens). Dropout is active only while training.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "model/params.h"

namespace difftx {

enum class Pooling { kLast, kMean };
enum class HeadKind { kLinear, kMlp };

struct HeadConfig {
  HeadKind kind = HeadKind::kLinear;
  Pooling pooling = Pooling::kLast;
  int64_t input = 0;    // hidden_size of the model
  int64_t hidden = 0;   // width of the mlp's first layer (mlp only)
  int64_t classes = 0;
  double dropout = 0.0;  // in [0, 1)
};

const char* pooling_name(Pooling p);
Pooling parse_pooling(const std::string& s);  // "last" | "mean"; Error naming "pooling"
const char* head_kind_name(HeadKind k);
HeadKind parse_head_kind(const std::string& s);  // "linear" | "mlp"; Error naming "head"

// The head's tensors as a ParamLayout (so AdamW and safetensors treat them like the model's):
// "score.dense.weight" [hidden, input], "score.dense.bias" [hidden] (mlp), "score.weight"
// [classes, in], "score.bias" [classes]. Biases do not decay.
ParamLayout head_layout(const HeadConfig& h);

// Normal(0, 0.02) weights, zero biases.
void init_head(const HeadConfig& h, const ParamLayout& layout, float* params, uint64_t seed);

// What one head pass keeps for its backward.
struct HeadPass {
  int64_t rows = 0;
  std::vector<float> in;           // [rows, input] pooled (after dropout)
  std::vector<float> in_mask;      // dropout scales of `in` (empty: none)
  std::vector<float> mid;          // [rows, hidden] tanh output after dropout (mlp)
  std::vector<float> mid_tanh;     // [rows, hidden] tanh output (mlp)
  std::vector<float> mid_mask;
  std::vector<float> logits;       // [rows, classes]
};

// pooled [rows, input] -> pass.logits. rng non-null: training (dropout drawn from it).
void head_forward(const HeadConfig& h, const ParamLayout& layout, const float* params,
                  const float* pooled, int64_t rows, HeadPass& pass, Rng* rng);
// dlogits [rows, classes] -> d_pooled [rows, input] (overwritten); parameter gradients added
// into grads (head layout).
void head_backward(const HeadConfig& h, const ParamLayout& layout, const float* params,
                   const HeadPass& pass, const float* dlogits, float* d_pooled, float* grads);

nlohmann::json head_config_to_json(const HeadConfig& h);
HeadConfig head_config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace difftx
