#pragma once
// The decoder, forward and backward, over a batch of B sequences of T tokens. One layer recipe
// (model/layer.h) serves every use; what a pass keeps and where its keys go is its policy:
//
//   training   Keep::kForBackward, all logits          forward() then backward()
//   prefill    Keep::kNothing, last logits, a KvCache  the cache gets every layer's K and V
//   decode     Keep::kNothing, a KvCache, T = 1        attention reads the cache
//   analysis   Keep::kNothing, no logits, an observer  attention maps, logits, hidden states
//
// Activations is owned by the caller and may be reused across calls (buffers are kept).
#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "kernels/matmul.h"
#include "kernels/rope.h"
#include "model/ext_state.h"
#include "model/kv_cache.h"
#include "model/params.h"

namespace difftx {

enum class AttentionKernel {
  kFlash,      // fused, O(T) memory (kernels/flash_attention.h): the default
  kReference,  // T x T maps (kernels/attention.h): the source of truth in tests
};

// How to run the model: matrix-product precision (fp32 is the default and the reference)
// and attention kernel. With a KV cache that already holds part of a sequence, attention runs
// the cached kernel (kernels/cached_attention.h) whatever is chosen here.
struct RunOptions {
  Precision precision = Precision::kFP32;
  AttentionKernel attention = AttentionKernel::kFlash;
  // 2..16: the attention logits of every map quantised to that many bits (dynamic absmax,
  // kernels/attention.h) in the reference kernel; evaluation passes over whole sequences
  // only (no backward, no KV cache continuation). 0: exact.
  int attention_logit_bits = 0;
};

enum class Keep {
  kForBackward,  // every activation backward() needs, per layer
  kNothing,      // one layer's worth of scratch, reused by every layer
};

enum class LogitRows {
  kAll,   // [B*T, vocab]
  kLast,  // [B, vocab]: the last token of each sequence (prefill)
  kSkip,  // no final norm, no LM head; x_final keeps the residual stream leaving the last
          // layer [B*T, hidden] (a task head reads it, backward_from_stream continues from it)
};

// What an observer sees of one layer's attention: the canonical Q and K of this pass (RoPE
// applied), lambda, and with the reference kernel the probability maps
// [B, Pq, ncomp, T, T] (zero above the diagonal; null with the other kernels). For DIFF V2
// the maps are those of the 2n query sub-heads, and token_lambda [B*T, n] holds the per-token
// lambda of each output head (null for the other model types).
struct AttentionView {
  const HeadGeometry& geom;
  const float* Q;
  const float* K;
  float lambda;
  const float* probs;
  const float* token_lambda = nullptr;
};

// The per-layer hook through which analysis and monitoring see inside a pass.
class LayerObserver {
 public:
  virtual ~LayerObserver() = default;
  virtual void on_attention(int64_t /*layer*/, const AttentionView& /*view*/) {}
  // The residual stream leaving `layer`, [rows, hidden] (for the last layer: the stream that
  // enters the final norm).
  virtual void on_layer_output(int64_t /*layer*/, const float* /*x*/, int64_t /*rows*/,
                               int64_t /*hidden*/) {}
};

// What one forward pass is for (see the table at the top).
struct PassOptions {
  Keep keep = Keep::kForBackward;
  LogitRows logits = LogitRows::kAll;
  // With a cache (and Keep::kNothing): batch row b is cache sequence cache_rows[b] (null: b);
  // its tokens go to positions len[b]..len[b]+T-1, their keys and values are appended,
  // attention reads the cache, and len grows by T.
  KvCache* cache = nullptr;
  const int64_t* cache_rows = nullptr;
  LayerObserver* observer = nullptr;
};

struct LayerActivations {
  std::vector<float> x_in;      // [M, C] residual stream entering the layer (kForBackward)
  std::vector<float> inv_rms1;  // [M]
  std::vector<float> xn1;       // [M, C]
  std::vector<float> Q, K, V;   // canonical head-major layout (kernels/attention.h)
  AttentionSaved<float> attn_saved;  // kReference
  FlashSaved flash_saved;            // kFlash
  std::vector<float> attn_pre;   // [M, Pq*dv] attention output before the head norm (diff)
                                 // or the pair combine (V2)
  std::vector<float> inv_rms_h;  // [M*Pq] head norm (diff)
  std::vector<float> attn_out;   // [M, n*d] input of o_proj: head-normed (diff), pair-combined
                                 // (V2); the baseline's o_proj reads attn_pre
  std::vector<float> token_lambda;  // [M, n] V2: sigmoid(xn1 W_lambda^T)
  std::vector<float> h;          // [M, C] after the attention residual
  std::vector<float> inv_rms2;   // [M]
  std::vector<float> xn2;        // [M, C]
  std::vector<float> gate_up;    // [M, 2F]
  std::vector<float> act;        // [M, F]
  float lambda = 0.f;            // differential only
  ExtActivations ext;            // the extensions' (model/extensions.h)
};

struct Activations {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens, targets;  // [M]; target -1 = not counted
  std::vector<LayerActivations> layers;  // one per layer (kForBackward) or one shared scratch
  std::vector<float> qkv;                // [M, q + 2 kv] scratch of the fused projection
  std::vector<float> x_final, inv_rms_f, xn_f;  // [M, C], [M], [M, C] (rows of the logits)
  std::vector<float> logits;                    // [rows, vocab] per LogitRows
  RopeTable rope;
  RunOptions opts;  // as given to forward(); backward() uses the same
  Keep keep = Keep::kForBackward;
  int64_t counted = 0;  // targets that count in the loss
  double loss = 0.0;    // cross-entropy, plus alpha * attention_reg with ext_attention_loss
                        // in a pass kept for backward (the training objective)
  bool explicit_maps = false;  // an extension made the layers keep the T x T maps
  bool attention_loss = false;  // the loss holds ext_attention_loss's term
  double attention_reg = 0.0;   // sum over layers of R_l (model/extensions.h)
};

// Checks token ids and length against the config (throws Error), runs the model and returns
// the mean cross-entropy over targets >= 0 (0 when none). targets may be null (no loss);
// targets need LogitRows::kAll.
double forward(const Model& model, const int32_t* tokens, const int32_t* targets, int64_t B,
               int64_t T, Activations& acts, const RunOptions& opts = {},
               const PassOptions& pass = {});

// Adds d(loss)/d(parameter) * dloss into grads (same layout as model.params). Needs a forward
// pass with Keep::kForBackward and LogitRows::kAll.
void backward(const Model& model, Activations& acts, float* grads, double dloss = 1.0);

// The layers' part of backward, for heads other than the LM head (classification): d_stream
// [B*T, hidden] is d(loss)/d(residual stream leaving the last layer) and is consumed. Needs a
// forward pass with Keep::kForBackward (any LogitRows). Adds into grads as backward() does;
// dloss scales the attention-regulariser term of ext_attention_loss (when the model has it).
void backward_from_stream(const Model& model, Activations& acts, std::vector<float> d_stream,
                          float* grads, double dloss = 1.0);

// targets for next-token prediction: targets[b, t] = tokens[b, t+1], -1 at t = T-1.
std::vector<int32_t> next_token_targets(const std::vector<int32_t>& tokens, int64_t B,
                                        int64_t T);

}  // namespace difftx
