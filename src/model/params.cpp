#include "model/params.h"

#include <unistd.h>

#include <string>

#include "core/error.h"
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

double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
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

ParamLayout make_layout(const Config& c) {
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
    L.o_proj = b.add(p + "self_attn.o_proj.weight", {C, c.q_width()}, ParamKind::kMatrix);
    L.lambda_q1 = L.lambda_k1 = L.lambda_q2 = L.lambda_k2 = L.groupnorm = kNone;
    if (c.is_diff()) {
      L.lambda_q1 = b.add(p + "self_attn.lambda_q1", {d}, ParamKind::kLambda);
      L.lambda_k1 = b.add(p + "self_attn.lambda_k1", {d}, ParamKind::kLambda);
      L.lambda_q2 = b.add(p + "self_attn.lambda_q2", {d}, ParamKind::kLambda);
      L.lambda_k2 = b.add(p + "self_attn.lambda_k2", {d}, ParamKind::kLambda);
      if (c.diff_norm_affine)
        L.groupnorm = b.add(p + "self_attn.groupnorm.weight", {2 * d}, ParamKind::kNorm);
    }
    L.post_norm = b.add(p + "post_attention_layernorm.weight", {C}, ParamKind::kNorm);
    L.gate_up = b.add(p + "mlp.gate_proj.weight", {c.intermediate_size, C}, ParamKind::kMatrix);
    b.add(p + "mlp.up_proj.weight", {c.intermediate_size, C}, ParamKind::kMatrix, true);
    L.down = b.add(p + "mlp.down_proj.weight", {C, c.intermediate_size}, ParamKind::kMatrix);
    b.layout.layers.push_back(L);
  }
  b.layout.final_norm = b.add("model.norm.weight", {C}, ParamKind::kNorm);
  b.layout.lm_head = c.tie_word_embeddings
                         ? b.layout.embed
                         : b.add("lm_head.weight", {c.vocab_size, C}, ParamKind::kMatrix);
  const double bytes = static_cast<double>(b.total()) * sizeof(float);
  const double phys = physical_memory_bytes();
  if (phys > 0 && bytes > phys)
    throw Error("model too large: its parameters need " + std::to_string(bytes / (1 << 30)) +
                " GiB but this machine has " + std::to_string(phys / (1 << 30)) +
                " GiB; reduce the sizes in the config");
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

void init_parameters(Model& m, uint64_t seed) {
  Rng rng(seed);
  for (const auto& t : m.layout.tensors) {
    float* p = m.at(t.offset);
    switch (t.kind) {
      case ParamKind::kMatrix:
      case ParamKind::kEmbedding:
        for (size_t i = 0; i < t.numel; ++i) p[i] = static_cast<float>(0.02 * rng.normal());
        break;
      case ParamKind::kNorm:
        for (size_t i = 0; i < t.numel; ++i) p[i] = 1.0f;
        break;
      case ParamKind::kLambda:
        for (size_t i = 0; i < t.numel; ++i)
          p[i] = static_cast<float>(m.config.lambda_std_dev * rng.normal());
        break;
    }
  }
}

}  // namespace difftx
