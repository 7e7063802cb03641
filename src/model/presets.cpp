#include "model/presets.h"

#include "core/error.h"

namespace difftx {
namespace {
struct Size {
  const char* name;
  int64_t hidden, intermediate, layers, heads, max_pos;
};
// Differential (V1, V2) and baseline share every size: the paper's comparison at equal width.
// V1 has n/2 heads of 2d; V2 and the baseline n heads of d (V2's q_proj is twice as tall and
// it adds lambda_proj, docs/variants.md).
constexpr const char* kKinds[] = {"diff", "diffv2", "llama"};
ModelType kind_type(const std::string& kind) {
  return kind == "diff" ? ModelType::kDiffLlama
         : kind == "diffv2" ? ModelType::kDiffLlamaV2
                            : ModelType::kLlama;
}
constexpr Size kSizes[] = {
    {"tiny", 64, 176, 2, 4, 1024},
    {"small", 256, 704, 4, 8, 1024},
    {"ref", 512, 1408, 6, 8, 2048},
};
}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Size& s : kSizes)
    for (const char* kind : kKinds) names.push_back(std::string(s.name) + "-" + kind);
  return names;
}

Config preset_config(const std::string& name, int64_t vocab_size) {
  for (const Size& s : kSizes) {
    for (const char* kind : kKinds) {
      if (name != std::string(s.name) + "-" + kind) continue;
      Config c;
      c.model_type = kind_type(kind);
      c.vocab_size = vocab_size;
      c.hidden_size = s.hidden;
      c.intermediate_size = s.intermediate;
      c.num_hidden_layers = s.layers;
      c.num_attention_heads = c.num_key_value_heads = s.heads;
      c.head_dim = s.hidden / s.heads;
      c.max_position_embeddings = s.max_pos;
      c.diff_split_layout = false;  // the official code's semantics for new models
      c.rope_interleaved = true;
      c.diff_norm_affine = true;
      return c;
    }
  }
  std::string all;
  for (const auto& n : preset_names()) all += (all.empty() ? "" : ", ") + n;
  throw Error("unknown preset \"" + name + "\" (known: " + all + ")");
}

}  // namespace difftx
