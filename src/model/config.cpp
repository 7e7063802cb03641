#include "model/config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"

namespace difftx {
using json = nlohmann::json;

double Config::lambda_init(int64_t layer) const {
  if (diff_lambda_init) return *diff_lambda_init;
  return 0.8 - 0.6 * std::exp(-0.3 * static_cast<double>(layer));
}

namespace {
constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max();

class Reader {
 public:
  Reader(const json& j, const std::string& where) : j_(j), where_(where) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw Error(where_ + ": key \"" + key + "\" " + what);
  }

  int64_t positive_int(const char* key) const {
    if (!has(key)) fail(key, "is missing (a positive integer is required)");
    const json& v = j_.at(key);
    if (!v.is_number_integer()) fail(key, "must be an integer, got " + v.dump());
    const bool in_range = v.is_number_unsigned()
                              ? (v.get<uint64_t>() >= 1 && v.get<uint64_t>() <= kMaxDim)
                              : (v.get<int64_t>() >= 1 && v.get<int64_t>() <= kMaxDim);
    if (!in_range) fail(key, "must be in [1, " + std::to_string(kMaxDim) + "], got " + v.dump());
    return v.get<int64_t>();
  }
  int64_t positive_int(const char* key, int64_t dflt) const {
    return has(key) ? positive_int(key) : dflt;
  }
  double number(const char* key, double dflt) const {
    if (!has(key)) return dflt;
    const json& v = j_.at(key);
    if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail(key, "must be finite");
    return x;
  }
  bool boolean(const char* key, bool dflt) const {
    if (!has(key)) return dflt;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& dflt) const {
    if (!has(key)) return dflt;
    const json& v = j_.at(key);
    if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
    return v.get<std::string>();
  }

 private:
  const json& j_;
  const std::string& where_;
};
}  // namespace

const char* model_type_name(ModelType t) {
  switch (t) {
    case ModelType::kDiffLlama: return "diffllama";
    case ModelType::kDiffLlamaV2: return "diffllama_v2";
    case ModelType::kLlama: return "llama";
  }
  return "?";
}

Config parse_config(const std::string& json_text, const std::string& where,
                    LayoutDefaults defaults) {
  const bool official = defaults == LayoutDefaults::kOfficial;
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(where + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  const Reader r(j, where);
  Config c;

  constexpr const char* kTypes = "\"diffllama\", \"diffllama_v2\" or \"llama\"";
  if (!r.has("model_type")) r.fail("model_type", std::string("is missing (") + kTypes + ")");
  const std::string mt = r.string("model_type", "");
  if (mt == "diffllama") c.model_type = ModelType::kDiffLlama;
  else if (mt == "diffllama_v2") c.model_type = ModelType::kDiffLlamaV2;
  else if (mt == "llama") c.model_type = ModelType::kLlama;
  else r.fail("model_type", std::string("must be ") + kTypes + ", got \"" + mt + "\"");

  c.vocab_size = r.positive_int("vocab_size");
  c.hidden_size = r.positive_int("hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.num_hidden_layers = r.positive_int("num_hidden_layers");
  c.num_attention_heads = r.positive_int("num_attention_heads");
  c.num_key_value_heads = r.positive_int("num_key_value_heads", c.num_attention_heads);
  if (r.has("head_dim")) {
    c.head_dim = r.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      r.fail("num_attention_heads", "(" + std::to_string(c.num_attention_heads) +
                                        ") must divide hidden_size (" +
                                        std::to_string(c.hidden_size) +
                                        ") when head_dim is absent");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-5);
  // Values beyond these bounds give non-finite or meaningless numbers in the forward pass.
  if (c.rms_norm_eps <= 0 || c.rms_norm_eps > 1) r.fail("rms_norm_eps", "must be in (0, 1]");
  c.rope_theta = r.number("rope_theta", 10000.0);
  if (r.has("rope_parameters")) {  // newer transformers: {"rope_type": ..., "rope_theta": ...}
    const json& rp = j.at("rope_parameters");
    if (!rp.is_object()) r.fail("rope_parameters", "must be an object");
    const Reader rr(rp, where);
    if (rr.string("rope_type", "default") != "default")
      r.fail("rope_parameters", "rope_type other than \"default\" is not supported");
    if (!r.has("rope_theta")) c.rope_theta = rr.number("rope_theta", 10000.0);
  }
  if (c.rope_theta <= 0) r.fail("rope_theta", "must be > 0");
  // Below 1 the rotation frequencies grow with the dimension and overflow to inf/NaN.
  if (c.rope_theta < 1) r.fail("rope_theta", "must be >= 1");
  c.max_position_embeddings = r.positive_int("max_position_embeddings", 2048);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.lambda_std_dev = r.number("lambda_std_dev", 0.1);
  // lambda = exp(<lq1, lk1>) - ...: a spread above 1 makes the exponentials overflow.
  if (c.lambda_std_dev < 0 || c.lambda_std_dev > 1) r.fail("lambda_std_dev", "must be in [0, 1]");
  const std::string layout = r.string("diff_head_layout", official ? "interleaved" : "split");
  if (layout == "split") c.diff_split_layout = true;
  else if (layout == "interleaved") c.diff_split_layout = false;
  else r.fail("diff_head_layout", "must be \"interleaved\" or \"split\", got \"" + layout + "\"");
  c.rope_interleaved = r.boolean("rope_interleaved", official);
  c.diff_groupnorm = r.boolean("diff_groupnorm", true);
  // Without the head norm there is no norm weight: affine defaults to false, and true is an error.
  c.diff_norm_affine = r.boolean("diff_norm_affine", official && c.diff_groupnorm);
  if (c.diff_norm_affine && !c.diff_groupnorm)
    r.fail("diff_norm_affine", "true needs the head norm (diff_groupnorm true)");
  if (r.has("diff_lambda_init")) {
    c.diff_lambda_init = r.number("diff_lambda_init", 0.0);
    if (*c.diff_lambda_init < 0 || *c.diff_lambda_init >= 1)
      r.fail("diff_lambda_init", "must be a number in [0, 1) or null (the per-layer schedule)");
  }
  c.attention_groupnorm = r.boolean("attention_groupnorm", false);
  if (!c.is_llama() && c.attention_groupnorm)
    r.fail("attention_groupnorm", "is for llama models (diffllama has diff_groupnorm)");
  if (!c.is_diff() && (!c.diff_groupnorm || c.diff_lambda_init))
    r.fail(!c.diff_groupnorm ? "diff_groupnorm" : "diff_lambda_init",
           "is for diffllama (V1) models (llama has attention_groupnorm)");

  // Keys that would change the math in ways this engine does not implement.
  if (r.boolean("attention_bias", false)) r.fail("attention_bias", "true is not supported");
  if (r.boolean("mlp_bias", false)) r.fail("mlp_bias", "true is not supported");
  if (r.string("hidden_act", "silu") != "silu")
    r.fail("hidden_act", "must be \"silu\" (the only activation supported)");
  if (r.has("rope_scaling")) r.fail("rope_scaling", "is not supported (must be null or absent)");
  if (r.number("attention_dropout", 0.0) > 0.0)
    r.fail("attention_dropout", "> 0 is not supported");

  // Geometry.
  if (c.head_dim % 2 != 0) r.fail("head_dim", "must be even for rotary embeddings");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_key_value_heads", "(" + std::to_string(c.num_key_value_heads) +
                                      ") must divide num_attention_heads (" +
                                      std::to_string(c.num_attention_heads) + ")");
  if (c.is_diff()) {
    if (c.num_attention_heads % 2 != 0)
      r.fail("num_attention_heads", "must be even for diffllama (two sub-heads per head), got " +
                                        std::to_string(c.num_attention_heads));
    if (c.num_key_value_heads % 2 != 0)
      r.fail("num_key_value_heads", "must be even for diffllama, got " +
                                        std::to_string(c.num_key_value_heads));
    if (c.query_heads() % c.kv_groups() != 0)
      r.fail("num_key_value_heads", "must divide num_attention_heads in pairs");
  }
  if (c.q_width() > kMaxDim || c.kv_width() > kMaxDim)
    r.fail("head_dim", "makes the attention projections too large");
  c.ext = parse_extensions(j, where, c.hidden_size);
  // The maps the extensions read are V1's and llama's (kernels/ext_ops.h); V2's effective map
  // has a lambda per token, which they do not implement yet.
  if (c.is_diff_v2() && c.ext.map_key(true))
    r.fail(c.ext.map_key(true), "is not supported for diffllama_v2 (only ext_flow_gate is)");
  return c;
}

Config load_config(const std::string& path, LayoutDefaults defaults) {
  return parse_config(read_file_text(path), path, defaults);
}

std::string config_to_json(const Config& c) {
  json j;
  j["model_type"] = model_type_name(c.model_type);
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["lambda_std_dev"] = c.lambda_std_dev;
  j["diff_head_layout"] = c.diff_split_layout ? "split" : "interleaved";
  j["rope_interleaved"] = c.rope_interleaved;
  j["diff_norm_affine"] = c.diff_norm_affine;
  j["diff_groupnorm"] = c.diff_groupnorm;
  j["diff_lambda_init"] = c.diff_lambda_init ? json(*c.diff_lambda_init) : json(nullptr);
  j["attention_groupnorm"] = c.attention_groupnorm;
  write_extensions(c.ext, j);
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  return j.dump(2) + "\n";
}

}  // namespace difftx
