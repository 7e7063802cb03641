#include "model/params.h"

#include <string>

#include "core/error.h"
#include "core/memory_limit.h"
#include "core/rng.h"
#include "core/uint128.h"

namespace difftx {
namespace {
class LayoutBuilder {
 public:
  // fuse_with_previous keeps the tensor directly after the previous one (no alignment gap).
  size_t add(std::string name, std::vector<int64_t> shape, ParamKind kind,
             bool fuse_with_previous = false) {
    uint128 numel = 1;
    for (int64_t s : shape) numel *= static_cast<uint128>(s);
    if (!fuse_with_previous) total_ = (total_ + 15) / 16 * 16;  // 64-byte aligned starts
    const size_t offset = static_cast<size_t>(total_);
    total_ += numel;
    if (total_ > (static_cast<uint128>(1) << 60))
      throw Error("model is far too large: tensor " + name + " overflows the parameter count");
    layout.tensors.push_back({std::move(name), std::move(shape), offset,
                              static_cast<size_t>(numel), kind});
    return offset;
  }
  uint128 total() const { return total_; }
  ParamLayout layout;

 private:
  uint128 total_ = 0;
};

// Bytes the layout will need, from the config alone (before a single tensor is listed): the
// parameters with their alignment gaps, plus the bookkeeping of every tensor entry (name,
// shape, offsets), so that a config of a billion tiny layers is refused as surely as one huge
// matrix. Every factor is < 2^31, so the 128-bit products cannot overflow.
uint128 layout_bytes(const Config& c) {
  const uint128 C = static_cast<uint128>(c.hidden_size), F = static_cast<uint128>(c.intermediate_size);
  const uint128 V = static_cast<uint128>(c.vocab_size), d = static_cast<uint128>(c.head_dim);
  const uint128 q = static_cast<uint128>(c.q_width()), kv = static_cast<uint128>(c.kv_width());
  const uint128 o = static_cast<uint128>(c.o_width());
  const uint128 lambda_proj = c.is_diff_v2() ? static_cast<uint128>(c.num_attention_heads) * C : 0;
  constexpr uint128 kAlign = 16, kEntryBytes = 192;  // gap per tensor (floats); bytes per entry
  const uint128 lambdas = (c.is_diff() ? 4 * d : 0) + (c.head_norm_weight() ? 2 * d : 0);
  const ExtensionConfig& e = c.ext;  // the extensions' tensors (at most 7 more per layer)
  const uint128 ext = (e.enhancer_reduction ? 2 * C * (C / static_cast<uint128>(*e.enhancer_reduction)) : 0) +
                      (e.noise_threshold ? C + 4 * C * C : 0) + (e.flow_gate ? 2 * C * C + C : 0);
  const uint128 per_layer = 2 * C + (q + 2 * kv) * C + C * o + lambdas + lambda_proj + 3 * C * F +
                            ext + 17 * kAlign;
  const uint128 floats = V * C * (c.tie_word_embeddings ? 1 : 2) + C + 3 * kAlign +
                         static_cast<uint128>(c.num_hidden_layers) * per_layer;
  const uint128 entries = 3 + static_cast<uint128>(c.num_hidden_layers) * 19;
  return floats * sizeof(float) + entries * kEntryBytes;
}
}  // namespace

const TensorSpec* ParamLayout::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

size_t ParamLayout::num_parameters() const {
  size_t n = 0;
  for (const auto& t : tensors) n += t.numel;
  return n;
}

ParameterCounts count_parameters(const ParamLayout& layout) {
  ParameterCounts n;
  const auto has = [](const std::string& name, const char* part) {
    return name.find(part) != std::string::npos;
  };
  for (const TensorSpec& t : layout.tensors) {
    n.total += t.numel;
    if (has(t.name, ".ext.")) n.extension += t.numel;
    else if (has(t.name, "embed_tokens")) n.embedding += t.numel;
    else if (has(t.name, "lm_head")) n.lm_head += t.numel;
    else if (has(t.name, "self_attn.")) {
      n.attention += t.numel;
      if (has(t.name, "self_attn.lambda")) n.lambda += t.numel;
    } else if (has(t.name, "mlp.")) n.mlp += t.numel;
    else n.norm += t.numel;
  }
  return n;
}

ParamLayout make_layout(const Config& c) {
  check_fits_in_memory(layout_bytes(c),
                       "the model (" + std::to_string(c.num_hidden_layers) + " layers, hidden_size " +
                           std::to_string(c.hidden_size) + ", vocab_size " +
                           std::to_string(c.vocab_size) + ")",
                       "reduce the sizes in the config");
  LayoutBuilder b;
  const int64_t C = c.hidden_size, d = c.head_dim;
  b.layout.embed = b.add("model.embed_tokens.weight", {c.vocab_size, C}, ParamKind::kEmbedding);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerOffsets L{};
    L.input_norm = b.add(p + "input_layernorm.weight", {C}, ParamKind::kNorm);
    L.qkv = b.add(p + "self_attn.q_proj.weight", {c.q_width(), C}, ParamKind::kMatrix);
    b.add(p + "self_attn.k_proj.weight", {c.kv_width(), C}, ParamKind::kMatrix, true);
    b.add(p + "self_attn.v_proj.weight", {c.kv_width(), C}, ParamKind::kMatrix, true);
    L.o_proj = b.add(p + "self_attn.o_proj.weight", {C, c.o_width()}, ParamKind::kMatrix);
    L.lambda_q1 = L.lambda_k1 = L.lambda_q2 = L.lambda_k2 = L.groupnorm = L.lambda_proj = kNone;
    if (c.is_diff_v2())
      L.lambda_proj = b.add(p + "self_attn.lambda_proj.weight", {c.num_attention_heads, C},
                            ParamKind::kMatrix);
    if (c.is_diff()) {
      L.lambda_q1 = b.add(p + "self_attn.lambda_q1", {d}, ParamKind::kLambda);
      L.lambda_k1 = b.add(p + "self_attn.lambda_k1", {d}, ParamKind::kLambda);
      L.lambda_q2 = b.add(p + "self_attn.lambda_q2", {d}, ParamKind::kLambda);
      L.lambda_k2 = b.add(p + "self_attn.lambda_k2", {d}, ParamKind::kLambda);
    }
    if (c.head_norm_weight())  // over the 2d of a differential head, the d of a standard one
      L.groupnorm = b.add(p + "self_attn.groupnorm.weight", {c.ncomp() * d}, ParamKind::kNorm);
    L.post_norm = b.add(p + "post_attention_layernorm.weight", {C}, ParamKind::kNorm);
    L.gate_up = b.add(p + "mlp.gate_proj.weight", {c.intermediate_size, C}, ParamKind::kMatrix);
    b.add(p + "mlp.up_proj.weight", {c.intermediate_size, C}, ParamKind::kMatrix, true);
    L.down = b.add(p + "mlp.down_proj.weight", {C, c.intermediate_size}, ParamKind::kMatrix);
    const ExtensionConfig& e = c.ext;  // docs/variants.md, "Extensions of the design deck"
    if (e.enhancer_reduction) {
      const int64_t Cr = C / *e.enhancer_reduction;
      L.ext.enhancer_down = b.add(p + "ext.enhancer.down.weight", {Cr, C}, ParamKind::kMatrix);
      L.ext.enhancer_up = b.add(p + "ext.enhancer.up.weight", {C, Cr}, ParamKind::kMatrix);
    }
    if (e.noise_threshold) {
      L.ext.noise_norm = b.add(p + "ext.noise.norm.weight", {C}, ParamKind::kNorm);
      L.ext.noise_up = b.add(p + "ext.noise.up.weight", {2 * C, C}, ParamKind::kMatrix);
      L.ext.noise_down = b.add(p + "ext.noise.down.weight", {C, 2 * C}, ParamKind::kMatrix);
    }
    if (e.flow_gate) {
      L.ext.flow_weight = b.add(p + "ext.flow_gate.weight", {C, 2 * C}, ParamKind::kMatrix);
      L.ext.flow_bias = b.add(p + "ext.flow_gate.bias", {C}, ParamKind::kBias);
    }
    b.layout.layers.push_back(L);
  }
  b.layout.final_norm = b.add("model.norm.weight", {C}, ParamKind::kNorm);
  b.layout.lm_head = c.tie_word_embeddings
                         ? b.layout.embed
                         : b.add("lm_head.weight", {c.vocab_size, C}, ParamKind::kMatrix);
  b.layout.total = static_cast<size_t>(b.total());
  return std::move(b.layout);
}

Model::Model(const Config& c) : config(c), layout(make_layout(c)) {
  try {
    params = AlignedFloats(layout.total);
  } catch (const std::bad_alloc&) {
    throw Error("cannot allocate " + std::to_string(layout.total) +
                " parameters; reduce the sizes in the config");
  }
}

namespace {
// FNV-1a: a fixed, portable hash of a tensor name.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}
}  // namespace

void init_parameters(Model& m, uint64_t seed) {
  for (const auto& t : m.layout.tensors) {
    // One stream per tensor, from the seed and the tensor's name: two variants initialised
    // with one seed get identical values in every tensor they share (paired initialisation),
    // whatever else their layouts hold.
    Rng rng(seed ^ (name_hash(t.name) * 0x9E3779B97F4A7C15ull));
    float* p = m.at(t.offset);
    switch (t.kind) {
      case ParamKind::kMatrix:
      case ParamKind::kEmbedding:
        for (size_t i = 0; i < t.numel; ++i) p[i] = static_cast<float>(0.02 * rng.normal());
        break;
      case ParamKind::kNorm:
        for (size_t i = 0; i < t.numel; ++i) p[i] = 1.0f;
        break;
      case ParamKind::kBias:
        for (size_t i = 0; i < t.numel; ++i) p[i] = 0.0f;
        break;
      case ParamKind::kLambda:
        for (size_t i = 0; i < t.numel; ++i)
          p[i] = static_cast<float>(m.config.lambda_std_dev * rng.normal());
        break;
    }
  }
}

}  // namespace difftx
