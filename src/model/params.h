#pragma once
// Where every parameter lives in the model's single float allocation, by SPEC section 2 name.
// q/k/v projections are adjacent (one fused matrix [q; k; v]) and so are gate/up, so that each
// pair of projections is a single matrix product.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "model/config.h"

namespace difftx {

enum class ParamKind { kMatrix, kEmbedding, kNorm, kLambda, kBias };  // kBias: zeros at init

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  size_t offset = 0;  // in floats
  size_t numel = 0;
  ParamKind kind = ParamKind::kMatrix;
};

constexpr size_t kNone = static_cast<size_t>(-1);

// The extensions' tensors of one layer (model/extensions.h), kNone when off.
struct ExtOffsets {
  size_t enhancer_down = kNone, enhancer_up = kNone;                     // ext_token_enhancer
  size_t noise_norm = kNone, noise_up = kNone, noise_down = kNone;       // ext_noise_reduction
  size_t flow_weight = kNone, flow_bias = kNone;                         // ext_flow_gate
};

struct LayerOffsets {
  size_t input_norm, qkv, o_proj, lambda_q1, lambda_k1, lambda_q2, lambda_k2, groupnorm,
      lambda_proj,  // V2's per-token lambda projection [n, hidden]
      post_norm, gate_up, down;  // groupnorm and the lambdas are kNone when absent
  ExtOffsets ext;
};

struct ParamLayout {
  std::vector<TensorSpec> tensors;  // in allocation order
  std::vector<LayerOffsets> layers;
  size_t embed = 0, final_norm = 0, lm_head = 0;  // lm_head == embed when tied
  size_t total = 0;                               // floats, alignment gaps included
  size_t num_parameters() const;                  // floats that are parameters
  const TensorSpec* find(const std::string& name) const;
};

// Throws Error when the model would not fit in this machine's memory.
ParamLayout make_layout(const Config& c);

// Parameters by role, from the tensor names alone (so variants of different shapes compare):
// embedding, LM head (0 when tied), attention (q/k/v/o, V1's lambda vectors, the head norm,
// V2's lambda_proj), MLP, the RMSNorm weights of the residual stream, and extensions
// (tensors under ".ext."). `lambda` is the part of attention that produces lambda.
struct ParameterCounts {
  size_t total = 0, embedding = 0, lm_head = 0, attention = 0, lambda = 0, mlp = 0, norm = 0,
         extension = 0;
  size_t non_embedding() const { return total - embedding - lm_head; }
};
ParameterCounts count_parameters(const ParamLayout& layout);

struct Model {
  Config config;
  ParamLayout layout;
  AlignedFloats params;
  explicit Model(const Config& c);
  float* at(size_t offset) { return params.data() + offset; }
  const float* at(size_t offset) const { return params.data() + offset; }
};

// normal(0, 0.02) matrices and embeddings, unit norm weights, normal(0, lambda_std_dev) lambdas,
// zero biases. Each tensor is drawn from its own stream (seed, tensor name): models of different
// variants with the same seed share the values of every tensor they have in common.
void init_parameters(Model& m, uint64_t seed);

}  // namespace difftx
