#include "train/metrics.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"

namespace difftx {
namespace {
using json = nlohmann::json;

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// One record's keys, type-checked, with the line named in every error.
struct Fields {
  const json& j;
  const std::string& where;
  double real(const char* key) const {
    const auto it = j.find(key);
    check(it != j.end(), where, ": missing \"", key, "\"");
    if (it->is_null()) return std::numeric_limits<double>::quiet_NaN();
    check(it->is_number(), where, ": \"", key, "\" is not a number");
    return it->get<double>();
  }
  double optional_real(const char* key) const {
    return j.contains(key) ? real(key) : std::numeric_limits<double>::quiet_NaN();
  }
  int64_t step() const {
    const auto it = j.find("step");
    check(it != j.end() && it->is_number_integer(), where, ": missing or non-integer \"step\"");
    check(it->is_number_unsigned() ? it->get<uint64_t>() <= (uint64_t{1} << 62)
                                   : it->get<int64_t>() >= 0,
          where, ": \"step\" is out of range");
    return it->get<int64_t>();
  }
};

std::string snippet(const std::string& line) {
  return line.size() <= 60 ? line : line.substr(0, 57) + "...";
}
}  // namespace

std::string to_json_line(const StepRecord& r) {
  return json{{"step", r.step}, {"loss", number(r.loss)}, {"lr", number(r.lr)},
              {"grad_norm", number(r.grad_norm)}, {"tokens_per_s", number(r.tokens_per_s)},
              {"skipped", r.skipped}}
      .dump();
}

std::string to_json_line(const EvalRecord& r) {
  return json{{"step", r.step}, {"val_loss", number(r.val_loss)}}.dump();
}

std::string to_json_line(const MonitorRecord& r) {
  json j{{"step", r.step},
         {"attn_sparsity", number(r.sparsity)},
         {"attn_focus", number(r.focus)},
         {"attn_entropy", number(r.entropy)},
         {"attn_mean_abs", number(r.mean_abs)},
         {"attn_max", number(r.max)},
         {"attn_negative_share", number(r.negative_share)},
         {"logit_top1", number(r.logit_top1)},
         {"logit_median", number(r.logit_median)},
         {"hidden_top1", number(r.hidden_top1)},
         {"hidden_median", number(r.hidden_median)}};
  if (!r.lambda.empty()) {
    json l = json::array();
    for (double v : r.lambda) l.push_back(number(v));
    j["lambda"] = std::move(l);
  }
  return j.dump();
}

MetricsHistory parse_metrics_jsonl(const std::string& text, const std::string& source) {
  MetricsHistory h;
  std::istringstream in(text);
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + " line " + std::to_string(line_no);
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    check(!j.is_discarded(), where, ": not valid JSON: ", snippet(line));
    check(j.is_object(), where, ": not a JSON object: ", snippet(line));
    const Fields f{j, where};
    if (j.contains("loss")) {
      StepRecord r;
      r.step = f.step();
      r.loss = f.real("loss");
      r.lr = f.optional_real("lr");
      r.grad_norm = f.optional_real("grad_norm");
      r.tokens_per_s = f.optional_real("tokens_per_s");
      if (const auto s = j.find("skipped"); s != j.end()) {
        check(s->is_boolean(), where, ": \"skipped\" is not true or false");
        r.skipped = s->get<bool>();
      }
      h.steps.push_back(r);
    } else if (j.contains("val_loss")) {
      h.evals.push_back({f.step(), f.real("val_loss")});
    } else if (j.contains("attn_sparsity")) {
      MonitorRecord r;
      r.step = f.step();
      r.sparsity = f.real("attn_sparsity");
      r.focus = f.optional_real("attn_focus");
      r.entropy = f.optional_real("attn_entropy");
      r.mean_abs = f.optional_real("attn_mean_abs");
      r.max = f.optional_real("attn_max");
      r.negative_share = f.optional_real("attn_negative_share");
      r.logit_top1 = f.optional_real("logit_top1");
      r.logit_median = f.optional_real("logit_median");
      r.hidden_top1 = f.optional_real("hidden_top1");
      r.hidden_median = f.optional_real("hidden_median");
      if (const auto l = j.find("lambda"); l != j.end()) {
        check(l->is_array(), where, ": \"lambda\" is not an array");
        for (const auto& v : *l) {
          check(v.is_number() || v.is_null(), where, ": \"lambda\" holds a non-number");
          r.lambda.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
        }
      }
      h.monitors.push_back(std::move(r));
    }
  }
  return h;
}

MetricsHistory read_metrics_jsonl(const std::string& run_dir) {
  const std::string path = (std::filesystem::path(run_dir) / "metrics.jsonl").string();
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), run_dir,
        " has no metrics.jsonl (not a training run directory?)");
  return parse_metrics_jsonl(read_file_text(path), path);
}

MetricsLog::MetricsLog(const std::string& run_dir, int64_t resume_step)
    : path_((std::filesystem::path(run_dir) / "metrics.jsonl").string()) {
  std::string kept;
  if (resume_step >= 0 && std::filesystem::exists(path_)) {
    // Keep the lines of steps up to the checkpoint; a line the crashed run left half-written
    // or damaged is dropped with the rest of its tail.
    std::istringstream in(read_file_text(path_));
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      try {
        const MetricsHistory one = parse_metrics_jsonl(line, path_);
        int64_t step = -1;
        if (!one.steps.empty()) step = one.steps[0].step;
        if (!one.evals.empty()) step = one.evals[0].step;
        if (!one.monitors.empty()) step = one.monitors[0].step;
        if (step >= 0 && step <= resume_step) kept += line + "\n";
      } catch (const Error&) {
      }
    }
  }
  write_file_atomic(path_, kept);
  f_ = std::fopen(path_.c_str(), "a");
  check(f_ != nullptr, "cannot append to ", path_);
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write_line(const std::string& json_line) {
  check(std::fprintf(f_, "%s\n", json_line.c_str()) >= 0 && std::fflush(f_) == 0, "cannot write ",
        path_, " (disk full?)");
}

}  // namespace difftx
