#include "model/presets.h"

#include "core/error.h"

namespace difftx {
namespace {
struct Size {
  const char* name;
  int64_t hidden, intermediate, layers, heads, max_pos;
};
// Differential and baseline share every size: the paper's comparison at equal width.
constexpr Size kSizes[] = {
    {"tiny", 64, 176, 2, 4, 1024},
    {"small", 256, 704, 4, 8, 1024},
    {"ref", 512, 1408, 6, 8, 2048},
};
}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Size& s : kSizes)
    for (const char* kind : {"diff", "llama"}) names.push_back(std::string(s.name) + "-" + kind);
  return names;
}

Config preset_config(const std::string& name, int64_t vocab_size) {
  for (const Size& s : kSizes) {
    for (const char* kind : {"diff", "llama"}) {
      if (name != std::string(s.name) + "-" + kind) continue;
      Config c;
      c.model_type = std::string(kind) == "diff" ? ModelType::kDiffLlama : ModelType::kLlama;
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
