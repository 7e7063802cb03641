#pragma once
// The training run shared by `difftx classify train` and `difftx summarize train`: the run
// directory (staged so it appears only complete, then locked), the optimisation loop (AdamW on
// a warm-up + cosine schedule, clipping by global norm), early stopping on a validation score,
// metrics.jsonl (train/metrics.h: step records, and eval records whose val_loss is the
// validation loss) and crash-proof resume.
//
// The directory holds the inference files of the best model so far (the task's own, written by
// TaskModel::save_files) and task_state.safetensors: every parameter group's weights, AdamW
// moments and best weights, with the step, the early-stopping state and the options. It is
// written atomically every save_every steps and at the end; a resume reads only it (and
// rewrites the best files from it). Batches and dropout depend only on (seed, step), so a
// resumed run continues exactly as an uninterrupted one.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dir_lock.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/metrics.h"

namespace difftx {

struct TaskTrainOptions {
  int64_t steps = 500, batch = 8;
  double lr = 3e-4, min_lr_ratio = 0.1, weight_decay = 0.01, grad_clip = 1.0;
  int64_t warmup = -1;  // -1: 5% of steps
  uint64_t seed = 0;
  int64_t eval_every = 50;  // validation period in steps (0: only at the end)
  int64_t patience = 5;     // evaluations without improvement before stopping (0: never stop)
  int64_t save_every = 100;
};

nlohmann::json task_options_to_json(const TaskTrainOptions& o);
TaskTrainOptions task_options_from_json(const nlohmann::json& j, const std::string& where);
// Throws Error naming the field of the first value out of range.
void validate(const TaskTrainOptions& o);

// A group of parameters trained together (the language model, a task head).
struct ParamGroup {
  std::string name;          // "model", "head": tensor names in the state file
  const ParamLayout* layout;
  float* params;
  float* grads;              // zeroed by the run before each step
};

// What a task gives the run.
class TaskModel {
 public:
  virtual ~TaskModel() = default;
  virtual std::vector<ParamGroup> groups() = 0;
  virtual int64_t train_examples() const = 0;
  // Adds the gradients of the mean loss over the training examples `batch` into the groups'
  // grads; returns that loss and counts the tokens read. `seed` drives dropout.
  virtual double loss_and_grads(const std::vector<int64_t>& batch, uint64_t seed,
                                int64_t* tokens) = 0;
  // Validation: a score where higher is better, and a loss for metrics.jsonl.
  struct Validation {
    double score = 0, loss = 0;
    std::string describe;  // e.g. "macro_f1 0.812"
  };
  virtual bool has_validation() const = 0;
  virtual Validation validate() = 0;
  // Writes the inference files (config, weights, tokenizer, task files) into dir, atomically
  // each.
  virtual void save_files(const std::string& dir) const = 0;
};

struct TaskRunObserver {
  std::function<void(int64_t step, int64_t steps)> on_start;  // where training starts and ends
  std::function<void(const StepRecord&)> on_step;
  std::function<void(int64_t step, const TaskModel::Validation&, bool improved)> on_eval;
  // Set (by a signal): the run saves its state after the current step and returns with
  // interrupted; a resume continues it exactly.
  const std::atomic<bool>* stop = nullptr;
};

struct TaskRunResult {
  int64_t steps = 0, best_step = 0;
  double best_score = 0;
  bool stopped_early = false;
  bool has_validation = false;  // best_score is meaningful
  bool interrupted = false;     // the observer's stop flag ended it before its last step
};

class TaskRun {
 public:
  static constexpr const char* kStateFile = "task_state.safetensors";

  // A new run: stages dir (which must not exist, or be empty) with the model's files and a
  // step-0 state. `identity` (task, data hashes, model description) is stored; on resume it
  // must be equal, or the run refuses to continue.
  TaskRun(TaskModel& model, const std::string& dir, const TaskTrainOptions& opts,
          const nlohmann::json& identity);
  // A resume: locks dir and reads its state into the model's groups. opts.steps may grow;
  // the other options come from the state.
  static std::unique_ptr<TaskRun> resume(TaskModel& model, const std::string& dir,
                                         const nlohmann::json& identity, int64_t steps);
  ~TaskRun();

  TaskRunResult train(const TaskRunObserver& obs);
  const TaskTrainOptions& options() const { return opts_; }
  // The options stored in dir's state (for a resume, before the model is built).
  static nlohmann::json stored_identity(const std::string& dir);

 private:
  TaskRun(TaskModel& model, std::string dir, const TaskTrainOptions& opts);
  void save_state() const;
  void load_state(const std::string& path, const nlohmann::json& identity);
  void keep_best();

  TaskModel& model_;
  std::string dir_;
  TaskTrainOptions opts_;
  nlohmann::json identity_;
  std::vector<ParamGroup> groups_;
  std::vector<std::unique_ptr<AdamW>> adam_;
  std::vector<std::vector<float>> best_;
  std::unique_ptr<DirLock> lock_;
  std::unique_ptr<MetricsLog> metrics_;
  int64_t step_ = 0, best_step_ = 0, bad_evals_ = 0;
  double best_score_ = -1e300;
  bool stopped_ = false, has_best_ = false;
};

}  // namespace difftx
