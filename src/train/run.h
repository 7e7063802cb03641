#pragma once
// A training run, owned by the library: the run directory (staged so that it appears only
// complete and resumable from step 0, then locked against a second writer), the settings
// stored in train_state and the resume rules (run_settings.h), the data, the Trainer, the
// metrics records and attention monitoring. The CLI gives flags and shows progress.
#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/dir_lock.h"
#include "io/tokenizer.h"
#include "model/params.h"
#include "train/dataset.h"
#include "train/metrics.h"
#include "train/run_settings.h"
#include "train/trainer.h"

namespace difftx {

struct RunRequest {
  std::string dir;             // the run directory (a model directory)
  bool resume = false;         // continue the run in dir
  RunSettings settings;        // the caller's values (defaults where not given)
  std::set<std::string> given; // fields the caller gave explicitly (for resume)
  std::string config_path;     // model of a new run: a config.json, or
  std::string preset;          // a preset name; on resume either must match the stored config
  std::string cache_dir;       // token caches
  // Data parallel: null or rank 0 owns the directory (creates, locks, writes); other ranks
  // build the same model and data from it without writing (rank 0 must have built first).
  const dist::Comm* comm = nullptr;
};

// What the run reports while it trains; any may be empty. Records are already in
// metrics.jsonl when these are called.
struct RunObserver {
  std::function<void(const StepRecord&)> on_step;
  std::function<void(const EvalRecord&)> on_eval;
};

class TrainRun {
 public:
  // A new run: checks the settings, builds the model and tokenizer, opens the data and
  // creates the directory with its step-0 checkpoint. A resume: locks the directory, reads the
  // stored settings and merges the request into them (run_settings.h). Throws Error.
  explicit TrainRun(const RunRequest& request);
  ~TrainRun();

  // Trains up to settings().train.steps; returns false when *stop became true (after a save).
  bool train(const RunObserver& obs, const std::atomic<bool>* stop = nullptr);

  const RunSettings& settings() const { return settings_; }
  const Model& model() const { return *model_; }
  int64_t train_tokens() const { return train_data_->size(); }
  int64_t val_tokens() const { return val_data_ ? val_data_->size() : 0; }
  int64_t step() const { return trainer_->step(); }
  int64_t skipped_steps() const { return trainer_->skipped_steps(); }
  // Fingerprint of everything the ranks of one job must share: the settings, the model config,
  // the training and validation ids, the step and the weights.
  uint64_t fingerprint() const;

 private:
  void monitor(int64_t step);
  std::string dir_;
  bool writer_ = true;  // this process owns the directory
  RunSettings settings_;
  std::unique_ptr<DirLock> lock_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<TokenData> train_data_, val_data_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<MetricsLog> metrics_;
  std::vector<int32_t> probe_;  // the fixed window attention monitoring looks at
};

// Monitoring record of the attention statistics of `model` on one window of tokens.
MonitorRecord measure_attention(const Model& model, const std::vector<int32_t>& window, int64_t step);

}  // namespace difftx
