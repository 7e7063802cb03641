#pragma once
// Attention maps read out of a reference forward pass (RunOptions::attention = kReference,
// whose softmax maps the layer hook records), per layer and head, for one sequence of a batch:
//
//   differential: A1, A2 (the two softmax maps of each of the H = n/2 heads), lambda, and the
//                 effective map A1 - lambda * A2 that multiplies V;
//   DIFF V2:      A1, A2 (the maps of sub-heads 2h and 2h+1 of each of the n heads), the
//                 per-token lambda[t, h], and the effective map A1 - lambda[t] * A2, whose row
//                 t is scaled by the lambda of query token t;
//   standard:     the softmax map of each of the n heads (the effective map itself).
//
// Maps are [heads, T, T], row = query, column = key, zero above the diagonal. Also here: the
// attention logits q.k / sqrt(d) and the hidden states, the raw material of the paper's
// Table 5.
#include <cstdint>
#include <vector>

#include "model/transformer.h"

namespace difftx {

struct LayerMaps {
  int64_t heads = 0;
  float lambda = 0.f;               // differential only (V2: the mean of token_lambda)
  std::vector<float> token_lambda;  // [heads, T] V2 only: lambda of each query token
  std::vector<float> attn;          // [heads, T, T] effective map
  std::vector<float> attn1, attn2;  // [heads, T, T] the two softmax maps (differential only)
};

struct AttentionMaps {
  ModelType model_type = ModelType::kLlama;
  bool diff = false;  // two maps per head (V1 or V2)
  int64_t T = 0;
  std::vector<LayerMaps> layers;
  // The effective map of one head: T x T floats.
  const float* head(size_t layer, int64_t h) const {
    return layers[layer].attn.data() + h * T * T;
  }
};

// What analysis keeps of one forward pass with the reference attention kernel, collected
// through the layer hook (model/transformer.h LayerObserver): per layer lambda, the
// probability maps [B, Pq, ncomp, T, T], and -- with keep_activations -- the canonical Q and
// K and the hidden states leaving the layer. The pass itself keeps nothing else.
class ForwardRecord : public LayerObserver {
 public:
  struct Layer {
    float lambda = 0.f;
    std::vector<float> token_lambda;  // [B*T, n] V2
    std::vector<float> probs, Q, K, hidden;
  };
  explicit ForwardRecord(bool keep_activations = true) : keep_activations_(keep_activations) {}
  void on_attention(int64_t layer, const AttentionView& view) override;
  void on_layer_output(int64_t layer, const float* x, int64_t rows, int64_t hidden) override;

  HeadGeometry geom;  // of the pass: B sequences of T tokens
  std::vector<Layer> layers;

 private:
  Layer& at(int64_t layer);
  bool keep_activations_;
};

// Runs the model over B sequences of T tokens with the reference attention kernel, keeping
// no activations and computing no logits, and records what analysis needs. Throws Error for
// bad ids or a T beyond the context.
void run_reference_forward(const Model& model, const int32_t* tokens, int64_t B, int64_t T,
                           ForwardRecord& record);

// The maps of sequence b of a recorded pass.
AttentionMaps extract_attention_maps(const Config& config, const ForwardRecord& record,
                                     int64_t b = 0);

// run_reference_forward + extract_attention_maps for one sequence.
AttentionMaps compute_attention_maps(const Model& model, const std::vector<int32_t>& tokens);

// |q_i . k_j| / sqrt(d) for every causal pair (j <= i) of every head and every map (both maps
// of a differential head) of one layer and sequence, appended to out.
void append_abs_attention_logits(const Config& config, const ForwardRecord& record,
                                 int64_t layer, int64_t b, std::vector<float>& out);

// The hidden states leaving layer `layer` (the residual stream entering the next layer, or the
// final stream before the last norm) for sequence b: T * hidden_size values, appended to out
// as magnitudes.
void append_abs_hidden_states(const Config& config, const ForwardRecord& record, int64_t layer,
                              int64_t b, std::vector<float>& out);

}  // namespace difftx
