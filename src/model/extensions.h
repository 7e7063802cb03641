#pragma once
// The design deck's four extensions inside the one layer recipe (model/layer.cpp), forward and
// backward; definitions and equations in docs/variants.md. With y = the attention sublayer's
// output (o_proj), m_t = the attention mass token t receives (kernels/ext_ops.h):
//
//   token enhancer   y_t <- y_t * sigmoid(W_up gelu(W_down y_t)) * (1 + m_t)    before h = x + y
//   noise reduction  o_t <- o_t + [m_t > threshold] W_nd gelu(W_nu rmsnorm(o_t))  after the MLP
//   flow gate        o   <- g * o + (1 - g) * x_in,  g = sigmoid(W_g [o; x_in] + b_g)   last
//   attention loss   loss += alpha * sum_l R_l,  R_l from each layer's effective maps
#include <cstdint>
#include <vector>

#include "model/layer.h"

namespace difftx {

// The explicit-map (reference) attention path serves extensions up to this length.
constexpr int64_t kMaxExplicitMapTokens = 1024;

// Checks a pass against the extensions (T within the explicit-map path, no KV cache for those
// reading the attention mass) and sets the pass's extension fields. Throws Error naming the key.
void ext_setup_pass(const Config& c, int64_t T, bool with_loss, bool with_cache, LayerPass& p);

// For the options of a run (train, bench) before any pass: an Error on field "seq" when
// sequences of `seq` tokens with a loss would exceed what the explicit-map path serves.
void ext_check_seq(const Config& c, int64_t seq);

// Forward. After o_proj: y [M, C] in place (mass, enhancer, regulariser into a.ext.reg).
void ext_attention_output_forward(const LayerPass& p, int64_t l, LayerActivations& a, float* y);
// At the end of the block: x [M, C], the layer's output, in place; a.x_in is its input.
void ext_block_output_forward(const LayerPass& p, int64_t l, LayerActivations& a, float* x);

// Backward, in the reverse order. dx: d(layer output) -> d(output of the MLP residual); keeps
// the flow gate's share of d(layer input) in s.dx_in.
void ext_block_output_backward(const LayerPass& p, int64_t l, const LayerActivations& a,
                               std::vector<float>& dx, ExtGradScratch& s, float* G);
// dy_out: d(enhanced y) -> returns d(y), the gradient o_proj's backward takes.
const float* ext_attention_output_backward(const LayerPass& p, int64_t l,
                                           const LayerActivations& a, const float* dy_out,
                                           ExtGradScratch& s, float* G);
// The maps' own gradient (enhancer mass, regulariser) into dQ, dK; returns its d/dlambda.
float ext_maps_backward(const LayerPass& p, const LayerActivations& a, ExtGradScratch& s,
                        float* dQ, float* dK);
// Adds the flow gate's share to d(layer input).
void ext_input_backward(const LayerPass& p, const ExtGradScratch& s, std::vector<float>& dx);

}  // namespace difftx
