#include "experiment/spec.h"

#include <cmath>

#include "core/error.h"
#include "experiment/ablations.inc.h"
#include "experiment/lm.inc.h"
#include "experiment/needle.inc.h"
#include "experiment/outliers.inc.h"
#include "experiment/quant.inc.h"
#include "model/presets.h"

namespace difftx {
namespace {
using json = nlohmann::json;

// Reads typed values of one JSON object; every error names the file and the key's path.
class Fields {
 public:
  Fields(const json& j, std::string where, std::string path)
      : j_(j), where_(std::move(where)), path_(std::move(path)) {
    if (!j_.is_object()) fail("", "must be an object");
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(where_ + ": " + name(key) + " " + what);
  }
  std::string name(const std::string& key) const {
    return path_.empty() ? key : key.empty() ? path_ : path_ + "." + key;
  }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& at(const std::string& key) const {
    if (!has(key)) fail(key, "is missing");
    return j_.at(key);
  }
  std::string string(const std::string& key) const {
    if (!at(key).is_string() || at(key).get<std::string>().empty()) fail(key, "must be a non-empty string");
    return at(key).get<std::string>();
  }
  std::string string_or(const std::string& key, const std::string& dflt) const {
    return has(key) ? string(key) : dflt;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const json& v = at(key);
    if (!v.is_number_integer()) fail(key, "must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) fail(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(x));
    return x;
  }
  int64_t integer_or(const std::string& key, int64_t dflt, int64_t lo, int64_t hi) const {
    return has(key) ? integer(key, lo, hi) : dflt;
  }
  double number(const std::string& key, double lo, double hi) const {
    const json& v = at(key);
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(key, "must be a finite number");
    const double x = v.get<double>();
    if (x < lo || x > hi) fail(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
  double number_or(const std::string& key, double dflt, double lo, double hi) const {
    return has(key) ? number(key, lo, hi) : dflt;
  }
  const json& array(const std::string& key) const {
    if (!at(key).is_array() || at(key).empty()) fail(key, "must be a non-empty array");
    return at(key);
  }

 private:
  const json& j_;
  std::string where_, path_;
};

std::string with_cache(std::string path, const std::string& cache) {
  const std::string marker = "${cache}";
  for (size_t at = path.find(marker); at != std::string::npos;
       at = path.find(marker, at + cache.size()))
    path.replace(at, marker.size(), cache);
  return path;
}

// "small-diff" with size "tiny" -> "tiny-diff".
std::string resize_preset(const std::string& preset, const std::string& size) {
  const size_t dash = preset.find('-');
  return size.empty() || dash == std::string::npos ? preset : size + preset.substr(dash);
}
}  // namespace

ExperimentSpec parse_experiment(const std::string& json_text, const std::string& where,
                                bool quick, const std::string& cache) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(where + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  const Fields top(j, where, "");
  std::string size;
  if (quick && top.has("quick")) {
    const Fields q(top.at("quick"), where, "quick");
    size = q.string_or("size", "");
    json patch = top.at("quick");
    patch.erase("size");
    j.merge_patch(patch);
  }
  ExperimentSpec s;
  s.source = where;
  s.name = top.string("name");
  s.version = top.integer("version", 1, 1000000);
  s.title = top.string("title");
  s.question = top.string_or("question", "");
  const std::string kind = top.string_or("kind", "lm");
  if (kind == "needle") {
    s.kind = ExperimentKind::kNeedle;
    const Fields n(top.at("needle"), where, "needle");
    NeedleSpec& ns = s.needle;
    ns.filler = with_cache(n.string("filler"), cache);
    ns.context_bytes = n.integer("context_bytes", 64, 1 << 20);
    for (const json& v : n.array("needles")) {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 48)
        n.fail("needles", "must hold integers in [1, 48] (needles per document)");
      ns.needles.push_back(v.get<int>());
    }
    ns.depth_bins = static_cast<int>(n.integer_or("depth_bins", 5, 1, 100));
    ns.train_examples = n.integer("train_examples", 1, int64_t{1} << 30);
    ns.val_examples = n.integer_or("val_examples", 200, 1, int64_t{1} << 30);
    ns.test_per_cell = n.integer_or("test_per_cell", 40, 1, int64_t{1} << 20);
    ns.data_seed = static_cast<uint64_t>(n.integer_or("data_seed", 1, 0, int64_t{1} << 62));
    ns.noise_per_cell = n.integer_or("noise_per_cell", 0, 0, ns.test_per_cell);
    if (top.has("data")) s.tokenizer = Fields(top.at("data"), where, "data").string_or("tokenizer", "byte");
  } else if (kind == "lm") {
    const Fields data(top.at("data"), where, "data");
    s.train_data = with_cache(data.string("train"), cache);
    s.val_data = with_cache(data.string("val"), cache);
    s.tokenizer = data.string_or("tokenizer", "byte");
  } else {
    top.fail("kind", "must be \"lm\" or \"needle\", got \"" + kind + "\"");
  }

  const Fields tr(top.at("train"), where, "train");
  TrainOptions& t = s.train;
  t.steps = tr.integer("steps", 1, int64_t{1} << 30);
  t.batch = tr.integer("batch", 1, 4096);
  t.seq = tr.integer("seq", 1, 1 << 20);
  t.warmup = tr.integer_or("warmup", -1, -1, t.steps);
  t.weight_decay = tr.number_or("weight_decay", t.weight_decay, 0, 10);
  t.grad_clip = tr.number_or("grad_clip", t.grad_clip, 0, 1e30);
  t.min_lr_ratio = tr.number_or("min_lr_ratio", t.min_lr_ratio, 0, 1);
  t.eval_every = tr.integer_or("eval_every", t.steps / 10, 0, t.steps);
  t.eval_windows = tr.integer_or("eval_windows", t.eval_windows, 1, 1 << 20);
  t.save_every = tr.integer_or("save_every", std::max<int64_t>(1, t.steps / 5), 0, t.steps);
  t.log_every = 1;

  for (const json& v : top.array("lrs")) {
    if (!v.is_number() || !(v.get<double>() > 0) || !(v.get<double>() <= 10))
      top.fail("lrs", "must hold learning rates in (0, 10]");
    s.lrs.push_back(v.get<double>());
  }
  for (const json& v : top.array("seeds")) {
    if (!v.is_number_unsigned()) top.fail("seeds", "must hold non-negative integers");
    s.seeds.push_back(v.get<uint64_t>());
  }
  s.eval_tokens = top.integer_or("eval_tokens", 0, 0, int64_t{1} << 40);
  s.outlier_windows = top.integer_or("outlier_windows", 0, 0, 1 << 16);
  if (top.has("quant_bits")) {
    for (const json& v : top.array("quant_bits")) {
      if (!v.is_number_integer() || v.get<int64_t>() < 2 || v.get<int64_t>() > 16)
        top.fail("quant_bits", "must hold integers in [2, 16] (bits of the attention logits)");
      s.quant_bits.push_back(v.get<int>());
    }
  }
  s.quant_tokens = top.integer_or("quant_tokens", 0, 0, int64_t{1} << 40);

  const json& arms = top.array("arms");
  for (size_t i = 0; i < arms.size(); ++i) {
    const Fields a(arms[i], where, "arms[" + std::to_string(i) + "]");
    ExperimentArm arm;
    arm.name = a.string("name");
    for (char ch : arm.name)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.')
        a.fail("name", "may hold only letters, digits, '-', '_' and '.' (it names a directory)");
    if (arm.name[0] == '.') a.fail("name", "must not start with '.'");
    for (const ExperimentArm& other : s.arms)
      if (other.name == arm.name) a.fail("name", "\"" + arm.name + "\" is used twice");
    arm.preset = resize_preset(a.string("preset"), size);
    arm.config = a.has("config") ? a.at("config") : json::object();
    if (!arm.config.is_object()) a.fail("config", "must be an object of config.json keys");
    s.arms.push_back(std::move(arm));
  }
  s.baseline = top.string("baseline");
  bool found = false;
  for (const ExperimentArm& arm : s.arms) found = found || arm.name == s.baseline;
  if (!found) top.fail("baseline", "must name one of the arms");
  if (top.has("paper")) {
    const json& p = top.array("paper");
    for (size_t i = 0; i < p.size(); ++i) {
      const Fields f(p[i], where, "paper[" + std::to_string(i) + "]");
      s.paper.push_back({f.string("claim"), f.string("paper"), f.string("where")});
    }
  }
  // Every arm's config must be valid before anything runs.
  for (const ExperimentArm& arm : s.arms) arm_config(arm, 257, where);
  return s;
}

Config arm_config(const ExperimentArm& arm, int64_t vocab_size, const std::string& where) {
  Config base;
  try {
    base = preset_config(arm.preset, vocab_size);
  } catch (const Error& e) {
    throw Error(where + ": arm \"" + arm.name + "\": " + e.what());
  }
  json c = json::parse(config_to_json(base));
  c.merge_patch(arm.config);
  c["vocab_size"] = vocab_size;
  return parse_config(c.dump(), where + " (arm \"" + arm.name + "\")", LayoutDefaults::kOfficial);
}

const std::vector<std::pair<std::string, std::string>>& builtin_experiments() {
  static const std::vector<std::pair<std::string, std::string>> all = {
      {"lm", kExperiment_lm},
      {"ablations", kExperiment_ablations},
      {"quant", kExperiment_quant},
      {"needle", kExperiment_needle},
      {"outliers", kExperiment_outliers},
  };
  return all;
}

}  // namespace difftx
