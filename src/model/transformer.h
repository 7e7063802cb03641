#pragma once
// The decoder forward and backward passes over a batch of B sequences of T tokens.
// forward() keeps every activation backward() needs in a Activations object that the caller
// owns and may reuse across calls of the same shape.
#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "kernels/matmul.h"
#include "kernels/rope.h"
#include "model/params.h"

namespace difftx {

enum class AttentionKernel {
  kFlash,      // fused, O(T) memory (kernels/flash_attention.h): the default
  kReference,  // T x T maps (kernels/attention.h): the source of truth in tests
};

// How to run the model: matrix-product precision (fp32 is the default and the reference)
// and attention kernel.
struct RunOptions {
  Precision precision = Precision::kFP32;
  AttentionKernel attention = AttentionKernel::kFlash;
};

struct LayerActivations {
  std::vector<float> x_in;      // [M, C] residual stream entering the layer
  std::vector<float> inv_rms1;  // [M]
  std::vector<float> xn1;       // [M, C]
  std::vector<float> Q, K, V;   // canonical head-major layout (kernels/attention.h)
  AttentionSaved<float> attn_saved;  // kReference
  FlashSaved flash_saved;            // kFlash
  std::vector<float> attn_pre;   // [M, Pq*dv] attention output before the head norm (diff)
  std::vector<float> inv_rms_h;  // [M*Pq] head norm (diff)
  std::vector<float> attn_out;   // [M, Pq*dv] head-normed input of o_proj (diff only;
                                 // the baseline's o_proj reads attn_pre)
  std::vector<float> h;          // [M, C] after the attention residual
  std::vector<float> inv_rms2;   // [M]
  std::vector<float> xn2;        // [M, C]
  std::vector<float> gate_up;    // [M, 2F]
  std::vector<float> act;        // [M, F]
  float lambda = 0.f;            // differential only
};

struct Activations {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens, targets;  // [M]; target -1 = not counted
  std::vector<LayerActivations> layers;
  std::vector<float> x_final, inv_rms_f, xn_f;  // [M, C], [M], [M, C]
  std::vector<float> logits;                    // [M, vocab]
  RopeTable rope;
  RunOptions opts;  // as given to forward(); backward() uses the same
  int64_t counted = 0;  // targets that count in the loss
  double loss = 0.0;
};

// Checks token ids and length against the config (throws Error), runs the model and returns
// the mean cross-entropy over targets >= 0 (0 when none). targets may be null (no loss).
double forward(const Model& model, const int32_t* tokens, const int32_t* targets, int64_t B,
               int64_t T, Activations& acts, const RunOptions& opts = {});

// Adds d(loss)/d(parameter) * dloss into grads (same layout as model.params).
void backward(const Model& model, Activations& acts, float* grads, double dloss = 1.0);

// targets for next-token prediction: targets[b, t] = tokens[b, t+1], -1 at t = T-1.
std::vector<int32_t> next_token_targets(const std::vector<int32_t>& tokens, int64_t B,
                                        int64_t T);

}  // namespace difftx
