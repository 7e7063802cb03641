#pragma once
// Runs an experiment (experiment/spec.h): every arm at every learning rate and seed is one
// resumable training run under OUT/runs/ARM/lr_RATE/seed_N, measured when it finishes
// (validation loss and bits per byte, the AR-Hit split, the final training loss). What a run
// measured is kept beside it (measures.json), so a second `run` after a crash resumes the
// unfinished runs and re-measures nothing. results.json is rewritten after every run.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiment/spec.h"
#include "model/params.h"

namespace difftx {

struct RunMeasures {
  std::string arm, dir;
  double lr = 0;
  uint64_t seed = 0;
  ParameterCounts params;
  int64_t steps = 0;
  double train_loss = 0;           // mean training loss over the last 10% of steps
  double val_loss = 0, val_bpb = 0;
  double ar_hit_loss = 0, other_loss = 0, ar_hit_share = 0;  // nats per token; share of tokens
  double train_tokens_per_s = 0, wall_s = 0;
  // Activation outliers (Table 5) over outlier_windows validation windows: the largest and the
  // median |attention logit| (q.k / sqrt(d), every causal pair, head and map) and |hidden
  // state| (the residual stream leaving every layer). 0 when not measured.
  double logit_top1 = 0, logit_median = 0, hidden_top1 = 0, hidden_median = 0;
  // The 1st, 2nd, 3rd, 10th and 100th largest over all those windows (Table 5's columns).
  std::vector<double> logit_top, hidden_top;
  // The validation loss with the attention logits quantised (Fig. 8), per width of quant_bits,
  // over quant_tokens tokens; quant_exact_loss is the unquantised loss over the same tokens.
  struct Quantised {
    int bits = 0;
    double loss = 0;
  };
  std::vector<Quantised> quant;
  double quant_exact_loss = 0;
  // needle experiments: exact-match answers per (needles, depth bin) of the test set; val_loss
  // is then the loss of the validation answers.
  struct NeedleCell {
    int needles = 0, depth_bin = 0;
    int64_t correct = 0, total = 0;
    // With noise_per_cell: the mean attention on the queried needle and noise over
    // span_examples test examples (experiment/needle.cpp, measure_needle_attention).
    double span_attention = 0, span_noise = 0;
    int64_t span_examples = 0;
  };
  std::vector<NeedleCell> needle;
};

struct ExperimentOptions {
  std::string out_dir;
  std::string cache_dir;  // token caches
  // Called with a line of progress (which run, its step); may be empty.
  std::function<void(const std::string&)> progress;
  const std::atomic<bool>* stop = nullptr;  // set by a signal: the current run saves and stops
};

struct ExperimentResults {
  ExperimentSpec spec;
  std::vector<RunMeasures> runs;
  bool complete = false;  // every run trained and measured (false after a stop)
  double wall_s = 0;      // of this invocation
};

ExperimentResults run_experiment(const ExperimentSpec& spec, const ExperimentOptions& options);

nlohmann::json measures_to_json(const RunMeasures& m);
// What a finished run's directory tells: its parameter counts, steps, the mean training loss
// and tokens/s over the last 10% of its logged steps.
RunMeasures measures_of_training(const std::string& dir);
RunMeasures measures_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace difftx
