#pragma once
// `difftx classify`: training (a TaskRun over a Classifier), evaluation and prediction, with the
// naive Bayes baseline beside the neural numbers. The CLI only maps flags onto these.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tasks/classifier.h"
#include "tasks/task_run.h"

namespace difftx {

struct ClassifyTrainRequest {
  std::string out;         // the run / classifier directory
  bool resume = false;     // continue the run in out (the rest comes from its state)
  std::string data, val;   // JSON lines; val "" = no validation (no early stopping)
  std::string init_from;   // a trained LM directory, or
  std::string preset;      // a preset of a new model trained from scratch
  std::string config;      // or a config.json of one
  std::string tokenizer = "byte";  // with preset/config
  HeadConfig head;
  int64_t seq = 256;
  bool balanced = false;   // class weights n / (K n_c)
  TaskTrainOptions opts;
  int64_t resume_steps = 0;  // > 0: extend a resumed run to this many steps
};

TaskRunResult classify_train(const ClassifyTrainRequest& r, const TaskRunObserver& obs);

struct ClassifyEvalRequest {
  std::string model;       // classifier directory ("" with baseline_only)
  std::string data;        // JSON lines with labels
  int64_t batch = 16;
  bool baseline = false;   // add the naive Bayes baseline
  std::string baseline_train;  // its training file ("" = the classifier's own training file)
};

// {"task": "classify", "data": {path, sha256[, snapshot_sha256]}, "accuracy", "macro_f1",
//  "per_class", "labels", "confusion", "examples", "examples_per_s", "tokens_per_s",
//  "ms_per_example", "loss"[, "baseline": {...same metrics..., "method"}]}
nlohmann::json classify_eval(const ClassifyEvalRequest& r);

// The baseline alone: naive Bayes trained on `train`, scored on `data`.
nlohmann::json baseline_eval(const std::string& train, const std::string& data);

// One JSON line per input line: {"label", "probs": {label: p}}.
std::string classify_predict(const std::string& model, const std::string& data, int64_t batch);

}  // namespace difftx
