#include "experiment/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "analysis/attention_stats.h"
#include "core/error.h"
#include "core/files.h"
#include "experiment/needle.h"
#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/metrics.h"
#include "train/run.h"

namespace difftx {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
std::string rate_name(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "lr_%.0e", lr);
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Trains (or resumes) one run; false when stopped by the caller's flag.
bool train_run(const ExperimentSpec& spec, const ExperimentArm& arm, double lr, uint64_t seed,
               const std::string& dir, const ExperimentOptions& o) {
  RunRequest req;
  req.dir = dir;
  req.cache_dir = o.cache_dir;
  const bool exists = fs::exists(fs::path(dir) / "train_state.safetensors");
  req.resume = exists;
  RunSettings& s = req.settings;
  s.data = spec.train_data;
  s.val = spec.val_data;
  s.tokenizer = spec.tokenizer;
  s.train = spec.train;
  s.train.lr = lr;
  s.train.seed = seed;
  if (!exists) {
    // The arm's config, at the tokenizer's vocabulary, written beside the runs.
    const auto tok = make_tokenizer(spec.tokenizer);
    const Config c = arm_config(arm, tok->vocab_size(), spec.source);
    const fs::path cfg = fs::path(o.out_dir) / "configs" / (arm.name + ".json");
    fs::create_directories(cfg.parent_path());
    write_file_atomic(cfg.string(), config_to_json(c));
    req.config_path = cfg.string();
    fs::create_directories(fs::path(dir).parent_path());
  }
  TrainRun run(req);
  RunObserver obs;
  const int64_t steps = run.settings().train.steps;
  obs.on_step = [&](const StepRecord& r) {
    if (o.progress && (r.step % std::max<int64_t>(1, steps / 10) == 0 || r.step == steps)) {
      char line[256];
      std::snprintf(line, sizeof line, "%s: step %lld/%lld loss %.4f (%.0f tok/s)", dir.c_str(),
                    static_cast<long long>(r.step), static_cast<long long>(steps), r.loss,
                    r.tokens_per_s);
      o.progress(line);
    }
  };
  return run.train(obs, o.stop);
}

}  // namespace

RunMeasures measures_of_training(const std::string& dir) {
  RunMeasures m;
  const auto model = load_model(dir);
  const auto tok = load_tokenizer(dir);
  m.params = count_parameters(model->layout);
  const MetricsHistory history = read_metrics_jsonl(dir);
  check(!history.steps.empty(), dir, ": the run logged no steps");
  m.steps = history.steps.back().step;
  const size_t tail = std::max<size_t>(1, history.steps.size() / 10);
  double loss = 0, tps = 0;
  for (size_t i = history.steps.size() - tail; i < history.steps.size(); ++i) {
    loss += history.steps[i].loss;
    tps += history.steps[i].tokens_per_s;
  }
  m.train_loss = loss / static_cast<double>(tail);
  m.train_tokens_per_s = tps / static_cast<double>(tail);
  return m;
}

namespace {
// Table 5's magnitudes on windows spread evenly over the validation text, one window a pass.
void measure_outliers(const Model& model, const TokenData& val, const ExperimentSpec& spec,
                      RunMeasures& m) {
  const int64_t T = std::min<int64_t>(spec.train.seq, val.size() - 1);
  check(T >= 1, "the validation text is too short for the outlier windows");
  std::vector<int32_t> window(static_cast<size_t>(T + 1));
  std::vector<float> top_l, med_l, top_h, med_h;
  std::vector<float> largest_l, largest_h;  // each window's 100 largest, pooled
  StatisticsOptions so;
  so.activations = true;
  for (int64_t w = 0; w < spec.outlier_windows; ++w) {
    val.even_window(w, spec.outlier_windows, T, window.data());
    const AttentionStatistics st = attention_statistics(model, window.data(), 1, T, so);
    top_l.push_back(st.logits.top1);
    med_l.push_back(st.logits.median);
    top_h.push_back(st.hidden.top1);
    med_h.push_back(st.hidden.median);
    largest_l.insert(largest_l.end(), st.logits.largest.begin(), st.logits.largest.end());
    largest_h.insert(largest_h.end(), st.hidden.largest.begin(), st.hidden.largest.end());
  }
  // The k-th largest of all windows is among the windows' k largest.
  const auto tops = [](std::vector<float> v) {
    std::sort(v.begin(), v.end(), std::greater<float>());
    std::vector<double> out;
    for (size_t k : {1, 2, 3, 10, 100})
      if (k <= v.size()) out.push_back(v[k - 1]);  // fewer values: a shorter list
    return out;
  };
  m.logit_top = tops(std::move(largest_l));
  m.hidden_top = tops(std::move(largest_h));
  // The largest over all windows; the median as the mean of the windows' medians.
  const auto mean = [](const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  m.logit_top1 = *std::max_element(top_l.begin(), top_l.end());
  m.hidden_top1 = *std::max_element(top_h.begin(), top_h.end());
  m.logit_median = mean(med_l);
  m.hidden_median = mean(med_h);
}

// Fig. 8: the validation loss with every attention map's logits quantised, at each width of
// quant_bits, and the exact loss over the same tokens.
void measure_quantised(const Model& model, const TokenData& val, const Tokenizer& tok,
                       const ExperimentSpec& spec, RunMeasures& m) {
  EvalSpec es;
  es.seq = spec.train.seq;
  es.batch = spec.train.batch;
  es.max_tokens = spec.quant_tokens > 0 ? spec.quant_tokens : spec.eval_tokens;
  m.quant_exact_loss = evaluate_loss(model, val, es, &tok).loss;
  for (int bits : spec.quant_bits) {
    es.attention_logit_bits = bits;
    m.quant.push_back({bits, evaluate_loss(model, val, es, &tok).loss});
  }
}
}  // namespace

json measures_to_json(const RunMeasures& m) {
  json quant = json::array();
  for (const RunMeasures::Quantised& q : m.quant) quant.push_back({{"bits", q.bits}, {"val_loss", q.loss}});
  json needle = json::array();
  for (const RunMeasures::NeedleCell& c : m.needle)
    needle.push_back({{"needles", c.needles}, {"depth_bin", c.depth_bin}, {"correct", c.correct},
                      {"total", c.total}, {"span_attention", c.span_attention},
                      {"span_noise", c.span_noise}, {"span_examples", c.span_examples}});
  return {{"arm", m.arm},
          {"lr", m.lr},
          {"seed", m.seed},
          {"dir", m.dir},
          {"parameters", m.params.total},
          {"parameters_non_embedding", m.params.non_embedding()},
          {"steps", m.steps},
          {"train_loss", m.train_loss},
          {"val_loss", m.val_loss},
          {"val_bits_per_byte", m.val_bpb},
          {"ar_hit_loss", m.ar_hit_loss},
          {"other_loss", m.other_loss},
          {"ar_hit_share", m.ar_hit_share},
          {"train_tokens_per_s", m.train_tokens_per_s},
          {"attention_logit_top1", m.logit_top1},
          {"attention_logit_median", m.logit_median},
          {"hidden_state_top1", m.hidden_top1},
          {"hidden_state_median", m.hidden_median},
          {"attention_logit_top_1_2_3_10_100", m.logit_top},
          {"hidden_state_top_1_2_3_10_100", m.hidden_top},
          {"quant_exact_loss", m.quant_exact_loss},
          {"quant", quant},
          {"needle", needle},
          {"wall_s", m.wall_s}};
}

RunMeasures measures_from_json(const json& j, const std::string& where) {
  try {
    RunMeasures m;
    m.arm = j.at("arm").get<std::string>();
    m.lr = j.at("lr").get<double>();
    m.seed = j.at("seed").get<uint64_t>();
    m.dir = j.at("dir").get<std::string>();
    m.params.total = j.at("parameters").get<size_t>();
    const size_t non_emb = j.at("parameters_non_embedding").get<size_t>();
    m.params.embedding = m.params.total - non_emb;  // only the split is kept
    m.steps = j.at("steps").get<int64_t>();
    m.train_loss = j.at("train_loss").get<double>();
    m.val_loss = j.at("val_loss").get<double>();
    m.val_bpb = j.at("val_bits_per_byte").get<double>();
    m.ar_hit_loss = j.at("ar_hit_loss").get<double>();
    m.other_loss = j.at("other_loss").get<double>();
    m.ar_hit_share = j.at("ar_hit_share").get<double>();
    m.train_tokens_per_s = j.at("train_tokens_per_s").get<double>();
    m.logit_top1 = j.at("attention_logit_top1").get<double>();
    m.logit_median = j.at("attention_logit_median").get<double>();
    m.hidden_top1 = j.at("hidden_state_top1").get<double>();
    m.hidden_median = j.at("hidden_state_median").get<double>();
    // Records from before the top-k columns have only top-1.
    m.logit_top = j.value("attention_logit_top_1_2_3_10_100", std::vector<double>{});
    m.hidden_top = j.value("hidden_state_top_1_2_3_10_100", std::vector<double>{});
    m.wall_s = j.at("wall_s").get<double>();
    if (j.contains("quant")) {  // records of experiments without quant_bits may lack it
      m.quant_exact_loss = j.at("quant_exact_loss").get<double>();
      for (const json& q : j.at("quant"))
        m.quant.push_back({q.at("bits").get<int>(), q.at("val_loss").get<double>()});
    }
    if (j.contains("needle"))
      for (const json& c : j.at("needle"))
        m.needle.push_back({c.at("needles").get<int>(), c.at("depth_bin").get<int>(),
                            c.at("correct").get<int64_t>(), c.at("total").get<int64_t>(),
                            c.value("span_attention", 0.0), c.value("span_noise", 0.0),
                            c.value("span_examples", int64_t{0})});
    return m;
  } catch (const json::exception& e) {
    throw Error(where + ": not a measures record (" + e.what() + "); delete it to measure again");
  }
}

ExperimentResults run_experiment(const ExperimentSpec& spec, const ExperimentOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ExperimentResults res;
  res.spec = spec;
  fs::create_directories(o.out_dir);
  const auto tok = make_tokenizer(spec.tokenizer);
  std::unique_ptr<TokenData> val;  // opened once, for every run's measures
  const std::vector<NeedleExample> needle_test =
      spec.kind == ExperimentKind::kNeedle ? prepare_needle_data(spec.needle, o.out_dir)
                                           : std::vector<NeedleExample>();
  const auto write_results = [&] {
    json runs = json::array();
    for (const RunMeasures& m : res.runs) runs.push_back(measures_to_json(m));
    write_file_atomic((fs::path(o.out_dir) / "results.json").string(),
                      json{{"experiment", spec.name}, {"version", spec.version},
                           {"complete", res.complete}, {"runs", runs}}.dump(2) + "\n");
  };
  for (const ExperimentArm& arm : spec.arms)
    for (double lr : spec.lrs)
      for (uint64_t seed : spec.seeds) {
        const std::string dir = (fs::path(o.out_dir) / "runs" / arm.name / rate_name(lr) /
                                 ("seed_" + std::to_string(seed))).string();
        const fs::path measures_file = fs::path(dir) / "measures.json";
        if (fs::exists(measures_file)) {
          res.runs.push_back(measures_from_json(
              json::parse(read_file_text(measures_file.string()), nullptr, false),
              measures_file.string()));
          continue;
        }
        const auto run_t0 = std::chrono::steady_clock::now();
        RunMeasures m;
        const bool finished = spec.kind == ExperimentKind::kNeedle
                                  ? needle_run(spec, arm, lr, seed, dir, o, needle_test, m)
                                  : train_run(spec, arm, lr, seed, dir, o);
        if (!finished) {
          write_results();
          res.wall_s = seconds_since(t0);
          return res;  // stopped: the run saved its state and resumes next time
        }
        if (spec.kind == ExperimentKind::kLanguageModel) m = measures_of_training(dir);
        m.arm = arm.name;
        m.lr = lr;
        m.seed = seed;
        m.dir = fs::relative(dir, o.out_dir).string();
        char line[256];
        if (spec.kind == ExperimentKind::kNeedle) {
          int64_t correct = 0, total = 0;
          for (const RunMeasures::NeedleCell& c : m.needle) correct += c.correct, total += c.total;
          std::snprintf(line, sizeof line, "%s: %lld/%lld answers right", dir.c_str(),
                        static_cast<long long>(correct), static_cast<long long>(total));
        } else {
          if (!val) val = TokenData::open(spec.val_data, *tok, o.cache_dir);
          const auto model = load_model(dir);
          EvalSpec es;
          es.seq = spec.train.seq;
          es.batch = spec.train.batch;
          es.max_tokens = spec.eval_tokens;
          es.split_ar_hit = true;
          const EvalResult e = evaluate_loss(*model, *val, es, tok.get());
          m.val_loss = e.loss;
          m.val_bpb = e.bits_per_byte;
          m.ar_hit_loss = e.ar_hit_loss;
          m.other_loss = e.other_loss;
          m.ar_hit_share = static_cast<double>(e.ar_hit_tokens) / static_cast<double>(e.tokens);
          if (spec.outlier_windows > 0) measure_outliers(*model, *val, spec, m);
          if (!spec.quant_bits.empty()) measure_quantised(*model, *val, *tok, spec, m);
          std::snprintf(line, sizeof line, "%s: val %.4f nats, %.4f bits/byte", dir.c_str(),
                        m.val_loss, m.val_bpb);
        }
        m.wall_s = seconds_since(run_t0);
        write_file_atomic(measures_file.string(), measures_to_json(m).dump(2) + "\n");
        res.runs.push_back(m);
        write_results();
        if (o.progress) o.progress(std::string(line) + " (" + std::to_string(static_cast<long long>(m.wall_s)) + " s)");
      }
  res.complete = true;
  write_results();
  res.wall_s = seconds_since(t0);
  return res;
}

}  // namespace difftx
