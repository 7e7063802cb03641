#pragma once
// The training loop: random windows from the training data, forward/backward with gradient
// accumulation, clipping by global norm, AdamW on a warm-up + decay schedule, periodic
// evaluation and crash-proof checkpoints in the model directory.
//
// A checkpoint is one file, train_state.safetensors (weights, AdamW moments, step and the
// options), written atomically, plus model.safetensors for inference; resuming reads only the
// former, so a crash between the two writes can never pair mismatched files. Batches depend
// only on (seed, step), so a resumed run continues bit-exactly.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "dist/comm.h"
#include "kernels/matmul.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/dataset.h"
#include "train/metrics.h"

namespace difftx {

class SafetensorsFile;
struct TrainStateMeta;

// The optimisation part of a run's settings (run_settings.h has the rest and the checks).
struct TrainOptions {
  int64_t steps = 1000, batch = 8, seq = 256, accum = 1;
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, grad_clip = 1.0;
  int64_t warmup = -1;  // -1: 5% of steps
  bool cosine = true;
  uint64_t seed = 0;
  int64_t save_every = 200, eval_every = 100;
  int64_t eval_windows = 16;  // val_loss: this many windows of seq tokens (evaluate.h)
  int64_t log_every = 1;  // printing only (the CLI's); every step is reported to the observer
  int64_t max_bad_steps = 10;  // consecutive non-finite steps before the run stops
  Precision precision = Precision::kFP32;
};

// Callbacks from the loop; any may be empty.
struct TrainObserver {
  std::function<void(const StepRecord&)> on_step;
  std::function<void(const EvalRecord&)> on_eval;
  std::function<void(int64_t step, const std::string& dir)> on_save;
};

class Trainer {
 public:
  // `model` is trained in place; `val` may be null. `stored_options` goes into every
  // checkpoint's metadata as is (run_settings.h). The model directory must already hold the
  // config and tokenizer (TrainRun writes them).
  //
  // Data parallel (dist/comm.h): with `comm` of N ranks, opts.batch is global and each rank
  // trains on its slice batch/N of the same windows; gradients and loss are summed over the
  // ranks before one clipping and AdamW step, so every rank keeps the same weights (compared
  // by checksum every kChecksumEvery steps and at every save). Only rank 0 saves and evaluates.
  Trainer(Model& model, const TokenData& train, const TokenData* val, const TrainOptions& opts,
          nlohmann::json stored_options, std::string model_dir,
          const dist::Comm* comm = nullptr);
  static constexpr int64_t kChecksumEvery = 20;

  // Continues from a checkpoint read from `path` (weights, AdamW moments, step counts).
  void resume(const SafetensorsFile& state, const TrainStateMeta& meta, const std::string& path);
  // Runs until opts.steps, or until *stop becomes true (then saves and returns false).
  bool run(const TrainObserver& obs, const std::atomic<bool>* stop = nullptr);
  void save() const { save_to(dir_); }
  void save_to(const std::string& dir) const;  // a full checkpoint into dir
  double evaluate() const;  // val_loss: evaluate_loss over opts.eval_windows * seq tokens
  int64_t step() const { return step_; }
  int64_t skipped_steps() const { return skipped_total_; }

 private:
  Model& model_;
  const TokenData& train_;
  const TokenData* val_;
  TrainOptions opts_;
  nlohmann::json stored_options_;
  std::string dir_;
  AdamW opt_;
  const dist::Comm* comm_;
  void check_same_weights() const;  // throws Error (on every rank) when ranks diverged
  int64_t step_ = 0, skipped_total_ = 0;
};

}  // namespace difftx
