#include "train/run_settings.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace difftx {
namespace {
using json = nlohmann::json;

// Fields a resumed run must keep: they decide the weights or what val_loss means.
const std::set<std::string> kFixedOnResume = {
    "data",     "val",       "tokenizer", "batch",  "seq",       "accum",       "lr",
    "min_lr_ratio", "weight_decay", "grad_clip", "warmup", "schedule", "seed", "precision",
    "eval_windows"};

void check_range(int64_t v, int64_t lo, int64_t hi, const char* field) {
  check_field(v >= lo && v <= hi, field, " must be an integer in [", lo, ", ", hi, "], got ", v);
}

// Reading one key of a stored "options" object, with the key's type checked.
struct Reader {
  const json& j;
  const std::string& where;
  template <class T>
  void integer(const char* key, T& out) const {
    const auto it = j.find(key);
    if (it == j.end()) return;
    check(it->is_number_integer(), where, ": option \"", key, "\" is not an integer");
    if constexpr (std::is_unsigned_v<T>) {
      check(it->is_number_unsigned() || it->template get<int64_t>() >= 0, where, ": option \"",
            key, "\" is negative");
      out = it->template get<T>();
    } else {
      check(!it->is_number_unsigned() ||
                it->template get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max()),
            where, ": option \"", key, "\" is out of range");
      out = it->template get<T>();
    }
  }
  void number(const char* key, double& out) const {
    const auto it = j.find(key);
    if (it == j.end()) return;
    check(it->is_number(), where, ": option \"", key, "\" is not a number");
    out = it->get<double>();
  }
  void text(const char* key, std::string& out) const {
    const auto it = j.find(key);
    if (it == j.end()) return;
    check(it->is_string(), where, ": option \"", key, "\" is not a string");
    out = it->get<std::string>();
  }
};

std::string shown(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }
}  // namespace

void validate(const RunSettings& s) {
  const TrainOptions& t = s.train;
  check_field(!s.data.empty(), "data", " is required (the training text)");
  check_range(t.steps, 1, int64_t{1} << 40, "steps");
  check_range(t.batch, 1, 4096, "batch");
  check_range(t.seq, 1, int64_t{1} << 20, "seq");
  check_range(t.accum, 1, 4096, "accum");
  check_field(std::isfinite(t.lr) && t.lr > 0 && t.lr < 10, "lr", " must be in (0, 10), got ", t.lr);
  check_field(t.min_lr_ratio >= 0 && t.min_lr_ratio <= 1, "min_lr_ratio",
              " must be in [0, 1], got ", t.min_lr_ratio);
  check_field(std::isfinite(t.weight_decay) && t.weight_decay >= 0 && t.weight_decay <= 10,
              "weight_decay", " must be in [0, 10], got ", t.weight_decay);
  check_field(std::isfinite(t.grad_clip) && t.grad_clip >= 0, "grad_clip",
              " must be a finite number >= 0 (0: off), got ", t.grad_clip);
  check_field(t.warmup >= -1 && t.warmup <= t.steps, "warmup", " must be in [0, steps = ",
              t.steps, "], got ", t.warmup);
  check_range(t.save_every, 0, int64_t{1} << 40, "save_every");
  check_range(t.eval_every, 0, int64_t{1} << 40, "eval_every");
  check_range(t.eval_windows, 1, int64_t{1} << 20, "eval_windows");
  check_range(t.log_every, 1, int64_t{1} << 40, "log_every");
  check_range(t.max_bad_steps, 1, int64_t{1} << 40, "max_bad_steps");
  check_range(s.attn_stats_every, 0, int64_t{1} << 40, "attn_stats_every");
}

json settings_to_json(const RunSettings& s) {
  const TrainOptions& t = s.train;
  return json{{"data", s.data},
              {"val", s.val},
              {"tokenizer", s.tokenizer},
              {"steps", t.steps},
              {"batch", t.batch},
              {"seq", t.seq},
              {"accum", t.accum},
              {"lr", t.lr},
              {"min_lr_ratio", t.min_lr_ratio},
              {"weight_decay", t.weight_decay},
              {"grad_clip", t.grad_clip},
              {"warmup", t.warmup >= 0 ? t.warmup : t.steps / 20},
              {"schedule", t.cosine ? "cosine" : "linear"},
              {"seed", t.seed},
              {"precision", t.precision == Precision::kBF16 ? "bf16" : "fp32"},
              {"save_every", t.save_every},
              {"eval_every", t.eval_every},
              {"eval_windows", t.eval_windows},
              {"log_every", t.log_every},
              {"max_bad_steps", t.max_bad_steps},
              {"attn_stats_every", s.attn_stats_every}};
}

RunSettings settings_from_json(const json& j, const RunSettings& defaults, const std::string& where) {
  check(j.is_object(), where, ": the stored options are not a JSON object");
  RunSettings s = defaults;
  TrainOptions& t = s.train;
  const Reader r{j, where};
  r.text("data", s.data);
  r.text("val", s.val);
  r.text("tokenizer", s.tokenizer);
  r.integer("steps", t.steps);
  r.integer("batch", t.batch);
  r.integer("seq", t.seq);
  r.integer("accum", t.accum);
  r.number("lr", t.lr);
  r.number("min_lr_ratio", t.min_lr_ratio);
  r.number("weight_decay", t.weight_decay);
  r.number("grad_clip", t.grad_clip);
  r.integer("warmup", t.warmup);
  r.integer("seed", t.seed);
  r.integer("save_every", t.save_every);
  r.integer("eval_every", t.eval_every);
  r.integer("eval_windows", t.eval_windows);
  r.integer("log_every", t.log_every);
  r.integer("max_bad_steps", t.max_bad_steps);
  r.integer("attn_stats_every", s.attn_stats_every);
  if (const auto c = j.find("cosine"); c != j.end()) {  // train_state of earlier versions
    check(c->is_boolean(), where, ": option \"cosine\" is not true or false");
    t.cosine = c->get<bool>();
  }
  std::string schedule = t.cosine ? "cosine" : "linear";
  r.text("schedule", schedule);
  check(schedule == "cosine" || schedule == "linear", where, ": option \"schedule\" is \"",
        schedule, "\", not cosine or linear");
  t.cosine = schedule == "cosine";
  std::string precision = t.precision == Precision::kBF16 ? "bf16" : "fp32";
  r.text("precision", precision);
  check(precision == "fp32" || precision == "bf16", where, ": option \"precision\" is \"",
        precision, "\", not fp32 or bf16");
  t.precision = precision == "bf16" ? Precision::kBF16 : Precision::kFP32;
  try {
    validate(s);
  } catch (const Error& e) {
    throw Error(where + ": stored option " + e.what());
  }
  return s;
}

RunSettings merge_for_resume(const RunSettings& stored, const RunSettings& requested,
                             const std::set<std::string>& given, int64_t step,
                             const std::string& dir) {
  const json have = settings_to_json(stored), want = settings_to_json(requested);
  json merged = have;
  for (const std::string& field : given) {
    check(want.contains(field), "no run option named ", field);
    if (kFixedOnResume.count(field)) {
      check_field(want[field] == have[field], field.c_str(), ": the run in ", dir,
                  " was started with ", shown(have[field]), "; resuming with ", shown(want[field]),
                  " would continue a different run (leave it out, or start a new run directory)");
    } else if (field == "steps") {
      check_field(requested.train.steps >= step, "steps", " is ", requested.train.steps,
                  " but the run in ", dir, " has already reached step ", step,
                  " (a resumed run may only be extended)");
      merged[field] = want[field];
    } else {
      merged[field] = want[field];
    }
  }
  return settings_from_json(merged, stored, dir);
}

}  // namespace difftx
