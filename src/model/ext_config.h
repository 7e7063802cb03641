#pragma once
// The design deck's four extensions as config keys, all off by default (docs/variants.md,
// "Extensions of the design deck"):
//
//   "ext_token_enhancer":  {"reduction": r}              or null
//   "ext_noise_reduction": {"threshold": t}              or null, t in [0, 1]
//   "ext_flow_gate":       true | false
//   "ext_attention_loss":  {"alpha": a, "beta": b}       or null, a, b >= 0 and finite
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace difftx {

struct AttentionLossConfig {
  double alpha = 0.0;  // weight of the regulariser in the loss
  double beta = 0.0;   // weight of the L2 term inside it
};

struct ExtensionConfig {
  std::optional<int64_t> enhancer_reduction;  // bottleneck width hidden_size / r
  std::optional<double> noise_threshold;
  bool flow_gate = false;
  std::optional<AttentionLossConfig> attention_loss;

  bool any() const { return enhancer_reduction || noise_threshold || flow_gate || attention_loss; }
  // Extensions that read the attention mass a token receives: column sums over every later
  // query, so a token's features depend on the whole context (no KV cache, see docs).
  bool needs_mass() const { return enhancer_reduction || noise_threshold; }
  // The config key of the first extension that needs the explicit T x T maps in a pass that
  // computes a loss (with_loss) or not; null when none does.
  const char* map_key(bool with_loss) const;
};

// Reads the four keys of `j` (absent or null = off). hidden_size is known: the reduction must
// divide it. Errors name the key, e.g. "ext_token_enhancer.reduction".
ExtensionConfig parse_extensions(const nlohmann::json& j, const std::string& where,
                                 int64_t hidden_size);
void write_extensions(const ExtensionConfig& e, nlohmann::json& j);

}  // namespace difftx
