#pragma once
// A model in the form Hugging Face transformers uses (DiffLlama / Llama): split head layout,
// half-split RoPE pairs (rotate_half), no per-head norm weight, and its config.json and weight
// files as transformers' save_pretrained writes them.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/params.h"

namespace difftx {

// The same function as `m` in Hugging Face form: q/k/v rows permuted from the interleaved head
// layout to the split one, q/k rows within each sub-head from GPT-J pairs to rotate_half pairs,
// and the groupnorm weight folded into o_proj's columns (o_proj * diag(w)). Throws Error naming
// the config key when transformers cannot express the model (diff_groupnorm false,
// diff_lambda_init, attention_groupnorm, a model type without a Hugging Face class).
std::unique_ptr<Model> to_hf_form(const Model& m);

// Token ids config.json carries, as JSON values (an id, a list of ids or null); transformers'
// class defaults are 1 and 2.
struct HfTokenIds {
  std::string bos = "1", eos = "2";
};

// config.json text of a Hugging Face form model, exactly as transformers 4.x writes it:
// only its keys, sorted, indent 2, torch_dtype of `dtype`.
std::string hf_config_json(const Config& c, DType dtype, const HfTokenIds& ids);

// The model's tensors in the order of transformers' state dict (module registration order).
std::vector<const TensorSpec*> hf_state_dict_order(const Model& m);

// Writes model.safetensors, or when the weights exceed max_shard_bytes, shards
// model-0000K-of-0000N.safetensors split as huggingface_hub does (a new shard when the next
// tensor would not fit) and model.safetensors.index.json. Each file atomically.
void write_hf_weights(const std::string& dir, const Model& m, DType dtype,
                      uint64_t max_shard_bytes = 5'000'000'000ull);

}  // namespace difftx
