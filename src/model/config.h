#pragma once
// The model configuration (SPEC section 2): parsed from config.json with every default and
// check, and written back with every key explicit.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/ext_config.h"

namespace difftx {

// diffllama: differential V1 (SPEC section 1); diffllama_v2: V2 (section 1b); llama: standard.
enum class ModelType { kDiffLlama, kDiffLlamaV2, kLlama };
const char* model_type_name(ModelType t);  // the config.json spelling

// RoPE frequency scaling as Hugging Face configs give it (`rope_scaling` in transformers 4.x,
// `rope_parameters` in 5.x). kDefault: inv_freq_i = theta^(-2i/d); kLinear: divided by factor;
// kLlama3: transformers' _compute_llama3_parameters (low frequencies divided by factor, high ones
// kept, a smooth blend between).
enum class RopeType { kDefault, kLinear, kLlama3 };
struct RopeScaling {
  RopeType type = RopeType::kDefault;
  double factor = 1.0;                               // linear, llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;   // llama3
  bool operator==(const RopeScaling&) const = default;
};

struct Config {
  ModelType model_type = ModelType::kDiffLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;  // n sub-heads (V2: n output heads, 2n query sub-heads)
  int64_t num_key_value_heads = 0;  // kv sub-heads
  int64_t head_dim = 0;             // d
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  double lambda_std_dev = 0.1;
  bool diff_split_layout = true;  // "split" (HF) vs "interleaved" (official)
  bool rope_interleaved = false;
  bool diff_norm_affine = false;
  // Ablations (SPEC section 2; the defaults are the paper's model).
  bool diff_groupnorm = true;              // false: no per-head RMSNorm (Table 6, "w/o GroupNorm");
                                           // the (1 - lambda_init) scale stays
  std::optional<double> diff_lambda_init;  // one lambda_init for every layer; none: the schedule
  bool attention_groupnorm = false;        // llama: per-head RMSNorm over d ("+ GroupNorm")
  ExtensionConfig ext;                     // the design deck's extensions (model/ext_config.h)

  bool is_diff() const { return model_type == ModelType::kDiffLlama; }  // V1
  bool is_diff_v2() const { return model_type == ModelType::kDiffLlamaV2; }
  bool is_llama() const { return model_type == ModelType::kLlama; }
  // Canonical attention geometry (see kernels/attention.h). V2 runs standard attention over
  // its 2n query sub-heads, then combines each pair (model/layer.cpp).
  int64_t ncomp() const { return is_diff() ? 2 : 1; }
  int64_t query_heads() const {  // Pq
    return is_diff_v2() ? 2 * num_attention_heads : num_attention_heads / ncomp();
  }
  int64_t kv_groups() const { return num_key_value_heads / ncomp(); }  // Pk
  int64_t q_width() const { return query_heads() * ncomp() * head_dim; }
  int64_t kv_width() const { return num_key_value_heads * head_dim; }
  int64_t o_width() const { return num_attention_heads * head_dim; }  // o_proj's input
  // Heads with one effective attention map each (what analysis shows): V1 n/2, V2 and llama n.
  int64_t effective_heads() const { return is_diff_v2() ? num_attention_heads : query_heads(); }
  double lambda_init(int64_t layer) const;
  // The per-head norm after attention: present?, with a weight?, and its output scale.
  bool head_norm() const { return is_diff() ? diff_groupnorm : attention_groupnorm; }
  bool head_norm_weight() const { return is_diff() ? diff_groupnorm && diff_norm_affine : attention_groupnorm; }
  double head_scale(int64_t layer) const { return is_diff() ? 1.0 - lambda_init(layer) : 1.0; }
};

// Where a config comes from decides the defaults of the three layout keys when absent:
// an existing checkpoint follows Hugging Face (split, false, false); a config for a model
// this project creates follows the official code (interleaved, true, true).
enum class LayoutDefaults { kHuggingFace, kOfficial };

// Parses and validates; `where` names the source in error messages. Throws Error.
Config parse_config(const std::string& json_text, const std::string& where,
                    LayoutDefaults defaults = LayoutDefaults::kHuggingFace);
Config load_config(const std::string& path,
                   LayoutDefaults defaults = LayoutDefaults::kHuggingFace);
std::string config_to_json(const Config& c);  // all keys, pretty-printed

// The rotary inverse frequency of each of the head_dim / 2 pairs, in double, from rope_theta
// and rope_scaling: the one source of the rotary table (kernels/rope.h).
std::vector<double> rope_inverse_frequencies(const Config& c);
// rope_scaling as transformers 4.x writes it ({"rope_type": ..., ...}); null when default.
std::string rope_scaling_json(const RopeScaling& s);

}  // namespace difftx
