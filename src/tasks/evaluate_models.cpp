#include "tasks/evaluate_models.h"

#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "tasks/attention_quality.h"
#include "tasks/classifier.h"
#include "tasks/classify.h"

namespace difftx {
namespace {

// Resets the kernel's peak-RSS mark of this process (Linux >= 4.0); false when impossible.
// Free heap memory is first given back to the system (glibc keeps it otherwise), so that a
// second model's peak does not start from the first one's leftovers.
bool reset_peak_rss() {
  malloc_trim(0);
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return NAN;
}

std::optional<Span> span_of(const std::string& text, int64_t T) {
  if (text.empty()) return std::nullopt;
  return parse_span(text, T);
}

nlohmann::json number_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); }

// The task metric and efficiency of one model, plus the inputs its attention is measured on.
struct TaskResult {
  nlohmann::json metric, efficiency;
  std::unique_ptr<Model> model;  // the network whose attention is measured
  std::vector<std::vector<int32_t>> attn_inputs;
};

TaskResult run_lm(const EvaluateRequest& r, const std::string& dir) {
  TaskResult t;
  t.model = load_model(dir);
  const auto tok = load_tokenizer(dir);
  const auto data = TokenData::open(r.data, *tok, r.cache_dir);
  EvalSpec spec;
  spec.seq = std::min<int64_t>(r.seq, t.model->config.max_position_embeddings);
  spec.batch = r.batch;
  spec.max_tokens = r.max_tokens;
  const auto t0 = std::chrono::steady_clock::now();
  const EvalResult e = evaluate_loss(*t.model, *data, spec, tok.get());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double windows = std::ceil(static_cast<double>(e.tokens) / static_cast<double>(spec.seq));
  t.metric = {{"loss", e.loss}, {"perplexity", e.perplexity}, {"bits_per_byte", e.bits_per_byte},
              {"tokens", e.tokens}, {"seq", spec.seq}};
  t.efficiency = {{"examples", windows},
                  {"examples_per_s", secs > 0 ? windows / secs : 0.0},
                  {"tokens_per_s", secs > 0 ? static_cast<double>(e.tokens) / secs : 0.0},
                  {"ms_per_example", windows > 0 ? 1000 * secs / windows : 0.0}};
  const int64_t T = std::min<int64_t>(r.attn_seq, t.model->config.max_position_embeddings);
  const int64_t n = std::min<int64_t>(r.attn_examples, std::max<int64_t>(1, (data->size() - 1) / T));
  for (int64_t i = 0; i < n && data->size() > T; ++i) {
    std::vector<int32_t> w(static_cast<size_t>(T + 1));
    data->even_window(i, n, T, w.data());
    w.pop_back();
    t.attn_inputs.push_back(std::move(w));
  }
  return t;
}

// Moves the efficiency keys of a task evaluation's JSON out of its metric.
void split_efficiency(TaskResult& t, nlohmann::json j) {
  for (const char* k : {"examples_per_s", "tokens_per_s", "ms_per_example"}) {
    t.efficiency[k] = j[k];
    j.erase(k);
  }
  t.efficiency["examples"] = j["examples"];
  j.erase("model");
  j.erase("data");
  j.erase("task");
  t.metric = std::move(j);
}

TaskResult run_classify(const EvaluateRequest& r, const std::string& dir) {
  TaskResult t;
  ClassifyEvalRequest q;
  q.model = dir;
  q.data = r.data;
  q.batch = r.batch;
  split_efficiency(t, classify_eval(q));
  Classifier c = load_classifier(dir);
  const auto data = read_classification_data(r.data);
  std::vector<TextExample> first(data.examples.begin(),
                                 data.examples.begin() + std::min<ptrdiff_t>(r.attn_examples, static_cast<ptrdiff_t>(data.examples.size())));
  t.attn_inputs = encode_texts(c, first);
  t.model = std::move(c.model);
  return t;
}

TaskResult run_summarize(const EvaluateRequest& r, const std::string& dir) {
  TaskResult t;
  split_efficiency(t, summarize_eval(dir, r.data, r.decoding, r.lead));
  Summarizer s = load_summarizer(dir);
  const auto data = read_summarization_data(r.data);
  for (size_t i = 0; i < data.examples.size() && static_cast<int64_t>(i) < r.attn_examples; ++i)
    t.attn_inputs.push_back(summary_prompt(s, data.examples[i].document));
  t.model = std::move(s.model);
  return t;
}

nlohmann::json evaluate_one(const EvaluateRequest& r, const std::string& dir) {
  const bool scoped = reset_peak_rss();
  TaskResult t = r.task == "lm" ? run_lm(r, dir)
               : r.task == "classify" ? run_classify(r, dir)
                                      : run_summarize(r, dir);
  std::optional<Span> span;
  if (!r.span.empty()) {
    int64_t shortest = r.attn_seq;
    for (const auto& s : t.attn_inputs) shortest = std::min<int64_t>(shortest, static_cast<int64_t>(s.size()));
    span = span_of(r.span, std::max<int64_t>(shortest, r.attn_seq));
  }
  const AttentionQuality q = attention_quality(*t.model, t.attn_inputs, r.attn_seq, span);
  t.efficiency["peak_rss_mb"] = number_or_null(peak_rss_mb());
  t.efficiency["peak_rss_scope"] = scoped ? "this model" : "the whole process";
  return {{"dir", dir},
          {"model_type", nlohmann::json::parse(config_to_json(t.model->config))["model_type"]},
          {"parameters", t.model->layout.num_parameters()},
          {"metric", t.metric},
          {"attention", to_json(q)},
          {"efficiency", t.efficiency}};
}

// The main metric of a task and whether higher is better.
std::pair<std::string, bool> main_metric(const std::string& task) {
  if (task == "lm") return {"loss", false};
  if (task == "classify") return {"accuracy", true};
  return {"rougeL", true};
}

double percent(double a, double b) { return b != 0 ? 100.0 * (a - b) / std::fabs(b) : NAN; }
double ratio(double a, double b) { return b != 0 ? a / b : NAN; }

double num(const nlohmann::json& j) { return j.is_number() ? j.get<double>() : NAN; }

}  // namespace

nlohmann::json evaluate_models(const EvaluateRequest& r) {
  check_field(r.task == "lm" || r.task == "classify" || r.task == "summarize", "task",
              " must be lm, classify or summarize, got \"", r.task, "\"");
  check_field(r.attn_examples >= 0, "attn_examples", " must be >= 0");
  check_field(r.attn_seq >= 1, "attn_seq", " must be >= 1");
  nlohmann::json out{{"task", r.task}};
  if (r.task != "lm") {
    const std::string text = r.data;  // the data's identity, as every task result records it
    out["data"] = r.task == "classify" ? to_json(read_classification_data(text).file)
                                       : to_json(read_summarization_data(text).file);
  } else {
    out["data"] = {{"path", r.data}};
  }
  out["model"] = evaluate_one(r, r.model);
  if (r.compare.empty()) return out;
  out["compare"] = evaluate_one(r, r.compare);
  const auto [name, higher] = main_metric(r.task);
  const nlohmann::json &a = out["model"], &b = out["compare"];
  const double ma = num(a["metric"][name]), mb = num(b["metric"][name]);
  nlohmann::json rel{{"metric", name},
                     {"metric_percent", number_or_null(higher ? percent(ma, mb) : percent(mb, ma))}};
  for (const char* k : {"examples_per_s", "tokens_per_s", "ms_per_example", "peak_rss_mb"})
    rel[std::string(k) + "_percent"] = number_or_null(percent(num(a["efficiency"][k]), num(b["efficiency"][k])));
  for (const char* k : {"focus", "coverage", "entropy", "span_attention", "span_noise"})
    if (a["attention"].contains(k))
      rel[std::string(k) + "_ratio"] = number_or_null(ratio(num(a["attention"][k]), num(b["attention"][k])));
  out["relative"] = rel;
  return out;
}

namespace {
std::string fmt(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v.get<double>());
    return buf;
  }
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}
}  // namespace

std::string evaluate_markdown(const nlohmann::json& j) {
  std::ostringstream md;
  const bool two = j.contains("compare");
  md << "# difftx evaluate: " << j["task"].get<std::string>() << "\n\n";
  md << "Data: `" << j["data"].value("path", "") << "`";
  if (j["data"].contains("sha256")) md << " (SHA-256 `" << j["data"]["sha256"].get<std::string>() << "`)";
  if (j["data"].contains("snapshot_sha256"))
    md << ", package-list snapshot `" << j["data"]["snapshot_sha256"].get<std::string>() << "`";
  md << "\n\n";
  auto header = [&](const char* what) {
    md << "| " << what << " | " << j["model"]["dir"].get<std::string>() << " ("
       << j["model"]["model_type"].get<std::string>() << ")";
    if (two)
      md << " | " << j["compare"]["dir"].get<std::string>() << " ("
         << j["compare"]["model_type"].get<std::string>() << ")";
    md << " |\n|---|---|" << (two ? "---|" : "") << "\n";
  };
  auto rows = [&](const char* section) {
    for (const auto& [k, v] : j["model"][section].items()) {
      if (v.is_object() || v.is_array()) continue;  // per-class tables stay in the JSON
      md << "| " << k << " | " << fmt(v);
      if (two) md << " | " << fmt(j["compare"][section].value(k, nlohmann::json()));
      md << " |\n";
    }
    md << "\n";
  };
  md << "Parameters: " << j["model"]["parameters"].get<int64_t>();
  if (two) md << " and " << j["compare"]["parameters"].get<int64_t>();
  md << "\n\n## Task metric\n\n";
  header("metric");
  rows("metric");
  md << "## Attention quality\n\n";
  header("measure");
  rows("attention");
  md << "## Efficiency\n\n";
  header("measure");
  rows("efficiency");
  if (two) {
    md << "## Relative (model vs compare)\n\n| quantity | value |\n|---|---|\n";
    for (const auto& [k, v] : j["relative"].items()) md << "| " << k << " | " << fmt(v) << " |\n";
    md << "\n";
  }
  return md.str();
}

}  // namespace difftx
