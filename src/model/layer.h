#pragma once
// One decoder layer, forward and backward: the one place where a layer is computed.
//
//   h   = x + o_proj( headnorm( attention( heads( qkv_proj( rmsnorm1(x) ) ) ) ) )
//   out = h + down( swiglu( gate_up( rmsnorm2(h) ) ) )
//
// (headnorm only for differential attention; DIFF V2 has a pair combine with a per-token
// lambda in its place, kernels/pair_combine.h.) model/transformer.cpp runs the layers in order
// for every kind of pass; the policy in LayerPass decides what is kept, where keys and values
// go and which attention kernel reads them.
#include <cstdint>
#include <vector>

#include "model/transformer.h"

namespace difftx {

// What every layer of one pass shares.
struct LayerPass {
  const Model& model;
  HeadGeometry geom;  // B sequences of T tokens in this pass
  HeadMapping map;
  const RopeTable& rope;
  RunOptions run;
  Keep keep = Keep::kForBackward;
  KvCache* cache = nullptr;      // null: attention over this pass's own tokens
  const int64_t* rows = nullptr;  // [B] cache sequence of each row
  const int64_t* pos0 = nullptr;  // [B] position of each row's first token (null: 0)
  bool continues = false;         // some row starts past position 0: read the cache
  LayerObserver* observer = nullptr;
  float* qkv = nullptr;  // [B*T, q + 2 kv] scratch
  // Extensions (model/extensions.h): the reference kernel keeps the maps they read, and
  // d(loss)/d(R_l) of ext_attention_loss (0: the term is not computed).
  bool explicit_maps = false;
  double attention_loss_weight = 0.0;
};

// x [B*T, hidden]: the residual stream, entering layer l on input and leaving it on output.
void layer_forward(const LayerPass& p, int64_t l, float* x, LayerActivations& a);

// Scratch for layer_backward, reused across layers.
struct LayerGradScratch {
  std::vector<float> dh, dxn, dact, dgu, dattn_out, dpre, dz, dQ, dK, dV, dqkv;
  ExtGradScratch ext;
};

// dx: on input d(loss)/d(layer output), on output d(loss)/d(layer input). Adds parameter
// gradients into grads (model layout). `a` must come from layer_forward with kForBackward.
void layer_backward(const LayerPass& p, int64_t l, const LayerActivations& a,
                    std::vector<float>& dx, LayerGradScratch& s, float* grads);

}  // namespace difftx
