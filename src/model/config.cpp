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

// One rope scaling object: transformers 4.x `rope_scaling` ({"rope_type" or "type", ...}) or
// 5.x `rope_parameters` (the same plus rope_theta). `key` names it in errors.
RopeScaling read_rope_scaling(const json& obj, const char* key, const std::string& where) {
  const Reader outer(obj, where);  // only for fail()
  if (!obj.is_object()) outer.fail(key, "must be an object or null, got " + obj.dump());
  const std::string at = where + ": " + key;
  const Reader r(obj, at);
  std::string type = r.string("type", "default");
  type = r.string("rope_type", type);
  RopeScaling s;
  if (type == "default") return s;
  auto positive = [&](const char* k) {
    if (!r.has(k)) r.fail(k, "is missing (rope_type \"" + type + "\" needs it)");
    const double x = r.number(k, 0.0);
    if (x <= 0) r.fail(k, "must be > 0");
    return x;
  };
  if (type == "linear") {
    s.type = RopeType::kLinear;
    s.factor = positive("factor");
  } else if (type == "llama3") {
    s.type = RopeType::kLlama3;
    s.factor = positive("factor");
    s.low_freq_factor = positive("low_freq_factor");
    s.high_freq_factor = positive("high_freq_factor");
    if (s.high_freq_factor <= s.low_freq_factor)
      r.fail("high_freq_factor", "must be greater than low_freq_factor");
    s.original_max_position_embeddings = r.positive_int("original_max_position_embeddings");
  } else {
    r.fail("rope_type", "\"" + type + "\" is not supported (default, linear or llama3)");
  }
  return s;
}

// rope_theta and the scaling, from either transformers generation's keys (both may be present
// if they agree).
void read_rope_settings(const json& j, const Reader& r, const std::string& where, Config& c) {
  c.rope_theta = r.number("rope_theta", 10000.0);
  const bool has_scaling = r.has("rope_scaling"), has_params = r.has("rope_parameters");
  if (has_scaling) c.rope_scaling = read_rope_scaling(j.at("rope_scaling"), "rope_scaling", where);
  if (has_params) {
    const json& rp = j.at("rope_parameters");
    const RopeScaling s = read_rope_scaling(rp, "rope_parameters", where);
    if (has_scaling && !(s == c.rope_scaling))
      r.fail("rope_parameters", "disagrees with rope_scaling (give one of them)");
    c.rope_scaling = s;
    if (!r.has("rope_theta")) c.rope_theta = Reader(rp, where + ": rope_parameters").number("rope_theta", 10000.0);
  }
}

// Hugging Face keys accepted only with the value that leaves the math unchanged.
void read_tolerated_hf_keys(const Reader& r) {
  if (r.boolean("mlp_bias", false)) r.fail("mlp_bias", "true is not supported");
  if (r.has("pretraining_tp") && r.positive_int("pretraining_tp") != 1)
    r.fail("pretraining_tp", "must be 1 (tensor-parallel pretraining slices are not supported)");
}
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
  read_rope_settings(j, r, where, c);
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
  if (r.string("hidden_act", "silu") != "silu")
    r.fail("hidden_act", "must be \"silu\" (the only activation supported)");
  read_tolerated_hf_keys(r);
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
  // Written only when set, so that configs (and stored run settings) from before keep their text.
  if (c.rope_scaling.type != RopeType::kDefault) j["rope_scaling"] = json::parse(rope_scaling_json(c.rope_scaling));
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

std::string rope_scaling_json(const RopeScaling& s) {
  switch (s.type) {
    case RopeType::kDefault: return "null";
    case RopeType::kLinear: return json{{"rope_type", "linear"}, {"factor", s.factor}}.dump();
    case RopeType::kLlama3:
      return json{{"rope_type", "llama3"},
                  {"factor", s.factor},
                  {"low_freq_factor", s.low_freq_factor},
                  {"high_freq_factor", s.high_freq_factor},
                  {"original_max_position_embeddings", s.original_max_position_embeddings}}
          .dump();
  }
  return "null";
}

std::vector<double> rope_inverse_frequencies(const Config& c) {
  const int64_t d = c.head_dim;
  const RopeScaling& s = c.rope_scaling;
  std::vector<double> inv(static_cast<size_t>(d / 2));
  for (int64_t i = 0; i < d / 2; ++i) {
    double f = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    if (s.type == RopeType::kLinear) f /= s.factor;
    if (s.type == RopeType::kLlama3) {
      // transformers' _compute_llama3_parameters, pair by pair.
      const double old_len = static_cast<double>(s.original_max_position_embeddings);
      const double low_freq_wavelen = old_len / s.low_freq_factor;
      const double high_freq_wavelen = old_len / s.high_freq_factor;
      const double wavelen = 2 * M_PI / f;
      if (wavelen > low_freq_wavelen) {
        f /= s.factor;
      } else if (!(wavelen < high_freq_wavelen)) {  // medium: blend
        const double smooth =
            (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv[static_cast<size_t>(i)] = f;
  }
  return inv;
}

}  // namespace difftx
