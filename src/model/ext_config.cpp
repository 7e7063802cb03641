#include "model/ext_config.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace difftx {
using json = nlohmann::json;

const char* ExtensionConfig::map_key(bool with_loss) const {
  if (enhancer_reduction) return "ext_token_enhancer";
  if (noise_threshold) return "ext_noise_reduction";
  if (with_loss && attention_loss) return "ext_attention_loss";
  return nullptr;
}

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& what) {
  throw Error(where + ": key \"" + key + "\" " + what);
}

// The object of an extension key, or null when it is absent, null or false.
const json* section(const json& j, const std::string& where, const char* key) {
  if (!j.contains(key) || j.at(key).is_null() || j.at(key) == json(false)) return nullptr;
  if (!j.at(key).is_object())
    fail(where, key, "must be an object (see docs/variants.md) or null, got " + j.at(key).dump());
  return &j.at(key);
}

double finite_number(const json& obj, const std::string& where, const std::string& key,
                     const char* field) {
  const std::string name = key + "." + field;
  if (!obj.contains(field)) fail(where, name, "is missing");
  const json& v = obj.at(field);
  if (!v.is_number()) fail(where, name, "must be a number, got " + v.dump());
  const double x = v.get<double>();
  if (!std::isfinite(x)) fail(where, name, "must be finite");
  return x;
}

}  // namespace

ExtensionConfig parse_extensions(const json& j, const std::string& where, int64_t hidden_size) {
  ExtensionConfig e;
  if (const json* s = section(j, where, "ext_token_enhancer")) {
    const char* name = "ext_token_enhancer.reduction";
    if (!s->contains("reduction")) fail(where, name, "is missing");
    const json& v = s->at("reduction");
    if (!v.is_number_integer()) fail(where, name, "must be an integer, got " + v.dump());
    // An unsigned value beyond int64 is certainly too large: read it as hidden_size + 1.
    const int64_t r = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hidden_size)
                          ? hidden_size + 1
                          : v.get<int64_t>();
    if (r < 1) fail(where, name, "must be positive, got " + v.dump());
    if (r > hidden_size || hidden_size % r != 0)
      fail(where, name, "must divide hidden_size (" + std::to_string(hidden_size) + "), got " +
                            v.dump());
    e.enhancer_reduction = r;
  }
  if (const json* s = section(j, where, "ext_noise_reduction")) {
    const double t = finite_number(*s, where, "ext_noise_reduction", "threshold");
    if (t < 0 || t > 1) fail(where, "ext_noise_reduction.threshold", "must be in [0, 1]");
    e.noise_threshold = t;
  }
  if (j.contains("ext_flow_gate") && !j.at("ext_flow_gate").is_null()) {
    if (!j.at("ext_flow_gate").is_boolean())
      fail(where, "ext_flow_gate", "must be true or false, got " + j.at("ext_flow_gate").dump());
    e.flow_gate = j.at("ext_flow_gate").get<bool>();
  }
  if (const json* s = section(j, where, "ext_attention_loss")) {
    AttentionLossConfig a;
    a.alpha = finite_number(*s, where, "ext_attention_loss", "alpha");
    a.beta = finite_number(*s, where, "ext_attention_loss", "beta");
    if (a.alpha < 0) fail(where, "ext_attention_loss.alpha", "must be >= 0");
    if (a.beta < 0) fail(where, "ext_attention_loss.beta", "must be >= 0");
    e.attention_loss = a;
  }
  return e;
}

void write_extensions(const ExtensionConfig& e, json& j) {
  j["ext_token_enhancer"] =
      e.enhancer_reduction ? json{{"reduction", *e.enhancer_reduction}} : json(nullptr);
  j["ext_noise_reduction"] =
      e.noise_threshold ? json{{"threshold", *e.noise_threshold}} : json(nullptr);
  j["ext_flow_gate"] = e.flow_gate;
  j["ext_attention_loss"] =
      e.attention_loss
          ? json{{"alpha", e.attention_loss->alpha}, {"beta", e.attention_loss->beta}}
          : json(nullptr);
}

}  // namespace difftx
