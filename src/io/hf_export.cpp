#include "io/hf_export.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/hf_shard_index.h"

namespace fs = std::filesystem;

namespace difftx {
using json = nlohmann::json;

namespace {

[[noreturn]] void inexpressible(const std::string& key, const std::string& why) {
  throw Error("config.json key \"" + key + "\" " + why +
              ": Hugging Face transformers cannot express this model (convert --to difftx keeps it)");
}

void check_expressible(const Config& c) {
  if (c.model_type != ModelType::kDiffLlama && c.model_type != ModelType::kLlama)
    inexpressible("model_type", "names a model without a Hugging Face class");
  if (c.is_diff()) {
    if (!c.diff_groupnorm) inexpressible("diff_groupnorm", "is false (DiffLlama always applies the head norm)");
    if (c.diff_lambda_init)
      inexpressible("diff_lambda_init", "is set (DiffLlama uses the per-layer lambda_init schedule)");
  } else if (c.attention_groupnorm) {
    inexpressible("attention_groupnorm", "is true (Llama has no per-head norm)");
  }
  // The deck's extensions add tensors and steps no Hugging Face class has (the attention-loss
  // extension is a training objective only: the model itself converts).
  if (c.ext.enhancer_reduction) inexpressible("ext_token_enhancer", "is set");
  if (c.ext.noise_threshold) inexpressible("ext_noise_reduction", "is set");
  if (c.ext.flow_gate) inexpressible("ext_flow_gate", "is true");
}

// Source row of each destination row of a q/k/v projection with n sub-heads of width d.
// Heads: split sub-head j is interleaved sub-head 2j (j < n/2) or 2(j - n/2) + 1.
// Pairs (q, k only): rotate_half row i is GPT-J row 2i (i < d/2) or 2(i - d/2) + 1.
std::vector<int64_t> hf_rows(int64_t n, int64_t d, bool permute_heads, bool permute_pairs) {
  std::vector<int64_t> src(static_cast<size_t>(n * d));
  for (int64_t j = 0; j < n; ++j) {
    const int64_t s = !permute_heads ? j : (j < n / 2 ? 2 * j : 2 * (j - n / 2) + 1);
    for (int64_t i = 0; i < d; ++i) {
      const int64_t r = !permute_pairs ? i : (i < d / 2 ? 2 * i : 2 * (i - d / 2) + 1);
      src[static_cast<size_t>(j * d + i)] = s * d + r;
    }
  }
  return src;
}

void copy_rows(const float* from, float* to, const std::vector<int64_t>& src_rows, int64_t cols) {
  for (size_t r = 0; r < src_rows.size(); ++r)
    std::memcpy(to + static_cast<int64_t>(r) * cols, from + src_rows[r] * cols, sizeof(float) * cols);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::unique_ptr<Model> to_hf_form(const Model& m) {
  const Config& c = m.config;
  check_expressible(c);
  Config hc = c;
  hc.diff_split_layout = true;
  hc.rope_interleaved = false;
  hc.diff_norm_affine = false;
  auto out = std::make_unique<Model>(hc);
  const bool heads = c.is_diff() && !c.diff_split_layout, pairs = c.rope_interleaved;
  const int64_t C = c.hidden_size, d = c.head_dim;
  for (const TensorSpec& dst : out->layout.tensors) {
    const TensorSpec* src = m.layout.find(dst.name);
    check(src && src->shape == dst.shape, "convert: tensor ", dst.name, " has no counterpart");
    const float* from = m.at(src->offset);
    float* to = out->at(dst.offset);
    if (ends_with(dst.name, ".self_attn.q_proj.weight")) {
      copy_rows(from, to, hf_rows(c.num_attention_heads, d, heads, pairs), C);
    } else if (ends_with(dst.name, ".self_attn.k_proj.weight")) {
      copy_rows(from, to, hf_rows(c.num_key_value_heads, d, heads, pairs), C);
    } else if (ends_with(dst.name, ".self_attn.v_proj.weight")) {
      copy_rows(from, to, hf_rows(c.num_key_value_heads, d, heads, false), C);
    } else if (ends_with(dst.name, ".self_attn.o_proj.weight") && c.head_norm_weight()) {
      // O = concat_h(norm(o_h) * w) -> o_proj sees w per column of each head's 2d block.
      const std::string gn = dst.name.substr(0, dst.name.size() - std::string("o_proj.weight").size()) +
                             "groupnorm.weight";
      const TensorSpec* w = m.layout.find(gn);
      check(w != nullptr, "convert: ", gn, " is missing");
      const int64_t cols = c.q_width(), width = static_cast<int64_t>(w->numel);
      const float* wv = m.at(w->offset);
      for (int64_t r = 0; r < C; ++r)
        for (int64_t k = 0; k < cols; ++k) to[r * cols + k] = from[r * cols + k] * wv[k % width];
    } else {
      std::memcpy(to, from, sizeof(float) * dst.numel);
    }
  }
  return out;
}

std::string hf_config_json(const Config& c, DType dtype, const HfTokenIds& ids) {
  check_expressible(c);
  check(c.diff_split_layout && !c.rope_interleaved && !c.diff_norm_affine,
        "hf_config_json: the model is not in Hugging Face form (use to_hf_form)");
  json j;
  j["architectures"] = {c.is_diff() ? "DiffLlamaForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = c.is_diff() ? "diffllama" : "llama";
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = json::parse(ids.bos);
  j["eos_token_id"] = json::parse(ids.eos);
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_scaling"] = json::parse(rope_scaling_json(c.rope_scaling));
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = dtype == DType::kF32 ? "float32" : dtype == DType::kBF16 ? "bfloat16" : "float16";
  j["transformers_version"] = "4.48.0";
  j["use_cache"] = true;
  j["vocab_size"] = c.vocab_size;
  if (c.is_diff()) {
    j["lambda_std_dev"] = c.lambda_std_dev;
  } else {  // LlamaConfig's own keys
    j["mlp_bias"] = false;
    j["pretraining_tp"] = 1;
  }
  return j.dump(2) + "\n";  // nlohmann objects keep keys sorted, as json.dumps(sort_keys=True)
}

std::vector<const TensorSpec*> hf_state_dict_order(const Model& m) {
  const Config& c = m.config;
  std::vector<std::string> names{"model.embed_tokens.weight"};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* t : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                          "self_attn.o_proj.weight", "self_attn.lambda_q1", "self_attn.lambda_k1",
                          "self_attn.lambda_q2", "self_attn.lambda_k2", "self_attn.groupnorm.weight",
                          "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                          "input_layernorm.weight", "post_attention_layernorm.weight"})
      names.push_back(p + t);
  }
  names.push_back("model.norm.weight");
  names.push_back("lm_head.weight");
  std::vector<const TensorSpec*> order;
  for (const std::string& n : names)
    if (const TensorSpec* t = m.layout.find(n)) order.push_back(t);
  check(order.size() == m.layout.tensors.size(), "hf_state_dict_order: a tensor has no place");
  return order;
}

void write_hf_weights(const std::string& dir, const Model& m, DType dtype, uint64_t max_shard_bytes) {
  // huggingface_hub's split: tensors in state-dict order; a new shard when the next one would
  // make the current shard exceed the limit (a tensor larger than the limit gets its own).
  std::vector<std::vector<const TensorSpec*>> shards(1);
  uint64_t current = 0, total = 0;
  for (const TensorSpec* t : hf_state_dict_order(m)) {
    const uint64_t bytes = t->numel * dtype_size(dtype);
    if (!shards.back().empty() && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(t);
    current += bytes;
    total += bytes;
  }
  const std::map<std::string, std::string> metadata{{"format", "pt"}};
  auto write_shard = [&](const std::string& name, std::vector<const TensorSpec*> ts) {
    // safetensors stores tensors of one dtype sorted by name.
    std::sort(ts.begin(), ts.end(), [](const TensorSpec* a, const TensorSpec* b) { return a->name < b->name; });
    std::vector<TensorToWrite> w;
    for (const TensorSpec* t : ts) w.push_back({t->name, t->shape, m.at(t->offset), dtype});
    write_safetensors((fs::path(dir) / name).string(), w, metadata);
  };
  if (shards.size() == 1) {
    write_shard("model.safetensors", shards[0]);
    return;
  }
  ShardIndex index;
  const size_t n = shards.size();
  for (size_t k = 0; k < n; ++k) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, n);
    write_shard(name, shards[k]);
    for (const TensorSpec* t : shards[k]) index.weight_map[t->name] = name;
  }
  write_file_atomic((fs::path(dir) / "model.safetensors.index.json").string(),
                    shard_index_json(index, total));
}

}  // namespace difftx
