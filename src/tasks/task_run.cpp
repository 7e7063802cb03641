#include "tasks/task_run.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "train/schedule.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

constexpr const char* kStateKey = "task_state";

double global_norm(const std::vector<ParamGroup>& groups) {
  double ss = 0;
  for (const ParamGroup& g : groups) {
    const float* x = g.grads;
    const size_t n = g.layout->total;
#pragma omp parallel for simd reduction(+ : ss) schedule(static)
    for (size_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(ss);
}

// The training examples of one step: drawn uniformly with replacement from a generator
// seeded by (seed, step) alone.
std::vector<int64_t> batch_of(uint64_t seed, int64_t step, int64_t batch, int64_t n) {
  Rng rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) + 1);
  std::vector<int64_t> out(static_cast<size_t>(batch));
  for (auto& i : out) i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
  return out;
}

}  // namespace

nlohmann::json task_options_to_json(const TaskTrainOptions& o) {
  return {{"steps", o.steps},           {"batch", o.batch},
          {"lr", o.lr},                 {"min_lr_ratio", o.min_lr_ratio},
          {"weight_decay", o.weight_decay}, {"grad_clip", o.grad_clip},
          {"warmup", o.warmup < 0 ? o.steps / 20 : o.warmup},
          {"seed", o.seed},             {"eval_every", o.eval_every},
          {"patience", o.patience},     {"save_every", o.save_every}};
}

TaskTrainOptions task_options_from_json(const nlohmann::json& j, const std::string& where) {
  TaskTrainOptions o;
  try {
    o.steps = j.at("steps").get<int64_t>();
    o.batch = j.at("batch").get<int64_t>();
    o.lr = j.at("lr").get<double>();
    o.min_lr_ratio = j.at("min_lr_ratio").get<double>();
    o.weight_decay = j.at("weight_decay").get<double>();
    o.grad_clip = j.at("grad_clip").get<double>();
    o.warmup = j.at("warmup").get<int64_t>();
    o.seed = j.at("seed").get<uint64_t>();
    o.eval_every = j.at("eval_every").get<int64_t>();
    o.patience = j.at("patience").get<int64_t>();
    o.save_every = j.at("save_every").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    detail::fail_with(where, ": bad stored options (", e.what(), ")");
  }
  validate(o);
  return o;
}

void validate(const TaskTrainOptions& o) {
  check_field(o.steps >= 1, "steps", " must be >= 1");
  check_field(o.batch >= 1, "batch", " must be >= 1");
  check_field(std::isfinite(o.lr) && o.lr > 0, "lr", " must be > 0");
  check_field(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "min_lr_ratio", " must be in [0, 1]");
  check_field(o.weight_decay >= 0, "weight_decay", " must be >= 0");
  check_field(o.grad_clip >= 0, "grad_clip", " must be >= 0 (0: no clipping)");
  check_field(o.warmup >= -1, "warmup", " must be >= 0");
  check_field(o.eval_every >= 0, "eval_every", " must be >= 0");
  check_field(o.patience >= 0, "patience", " must be >= 0");
  check_field(o.save_every >= 1, "save_every", " must be >= 1");
}

TaskRun::TaskRun(TaskModel& model, std::string dir, const TaskTrainOptions& opts)
    : model_(model), dir_(std::move(dir)), opts_(opts), groups_(model.groups()) {
  validate(opts_);
  if (opts_.warmup < 0) opts_.warmup = opts_.steps / 20;
  check(model_.train_examples() > 0, "no training examples");
  for (const ParamGroup& g : groups_) {
    adam_.push_back(std::make_unique<AdamW>(
        *g.layout, AdamWConfig{0.9, 0.95, 1e-8, opts_.weight_decay, false}));
    best_.emplace_back(g.params, g.params + g.layout->total);
  }
}

TaskRun::TaskRun(TaskModel& model, const std::string& dir, const TaskTrainOptions& opts,
                 const nlohmann::json& identity)
    : TaskRun(model, dir, opts) {
  identity_ = identity;
  {
    StagedDirectory staged(dir_);
    lock_ = std::make_unique<DirLock>(staged.path());
    const std::string final_dir = dir_;
    dir_ = staged.path();
    model_.save_files(dir_);
    save_state();
    dir_ = final_dir;
    staged.commit();  // the lock stays held: it is on the same file, renamed
  }
  metrics_ = std::make_unique<MetricsLog>(dir_, -1);
}

std::unique_ptr<TaskRun> TaskRun::resume(TaskModel& model, const std::string& dir,
                                         const nlohmann::json& identity, int64_t steps) {
  const auto stored = stored_identity(dir);
  TaskTrainOptions opts = task_options_from_json(stored.at("options"), dir);
  std::unique_ptr<TaskRun> run(new TaskRun(model, dir, opts));
  run->lock_ = std::make_unique<DirLock>(dir);
  run->load_state((fs::path(dir) / kStateFile).string(), identity);
  if (steps > 0) {
    check_field(steps >= run->step_, "steps", " (", steps, ") is below the step the run in ",
                dir, " has reached (", run->step_, ")");
    if (steps > run->opts_.steps) run->stopped_ = false;  // more steps: continue
    run->opts_.steps = steps;
  }
  // The best files again from the state (a crash may have left them half replaced).
  if (run->has_best_) {
    std::vector<std::vector<float>> now;
    for (const ParamGroup& g : run->groups_) now.emplace_back(g.params, g.params + g.layout->total);
    for (size_t i = 0; i < run->groups_.size(); ++i)
      std::copy(run->best_[i].begin(), run->best_[i].end(), run->groups_[i].params);
    model.save_files(dir);
    for (size_t i = 0; i < run->groups_.size(); ++i)
      std::copy(now[i].begin(), now[i].end(), run->groups_[i].params);
  }
  run->metrics_ = std::make_unique<MetricsLog>(dir, run->step_);
  return run;
}

TaskRun::~TaskRun() = default;

nlohmann::json TaskRun::stored_identity(const std::string& dir) {
  const std::string path = (fs::path(dir) / kStateFile).string();
  check(fs::is_regular_file(path), dir, " holds no task run to resume (", kStateFile,
        " is missing)");
  const SafetensorsFile f = SafetensorsFile::read(path);
  const auto it = f.metadata().find(kStateKey);
  check(it != f.metadata().end(), path, ": no ", kStateKey, " metadata");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception&) {
    detail::fail_with(path, ": the ", kStateKey, " metadata is not JSON");
  }
  check(j.is_object() && j.contains("options") && j.contains("identity"), path,
        ": the ", kStateKey, " metadata lacks options or identity");
  return j;
}

void TaskRun::save_state() const {
  std::vector<TensorToWrite> tensors;
  nlohmann::json adam_steps = nlohmann::json::array();
  for (size_t i = 0; i < groups_.size(); ++i) {
    const ParamGroup& g = groups_[i];
    const int64_t n = static_cast<int64_t>(g.layout->total);
    tensors.push_back({g.name + ".params", {n}, g.params});
    tensors.push_back({g.name + ".adam_m", {n}, adam_[i]->m().data()});
    tensors.push_back({g.name + ".adam_v", {n}, adam_[i]->v().data()});
    tensors.push_back({g.name + ".best", {n}, best_[i].data()});
    adam_steps.push_back(adam_[i]->steps());
  }
  const nlohmann::json meta{{"step", step_},           {"best_step", best_step_},
                            {"best_score", best_score_}, {"bad_evals", bad_evals_},
                            {"stopped", stopped_},     {"has_best", has_best_},
                            {"adam_steps", adam_steps}, {"options", task_options_to_json(opts_)},
                            {"identity", identity_}};
  write_safetensors((fs::path(dir_) / kStateFile).string(), tensors, {{kStateKey, meta.dump()}});
}

void TaskRun::load_state(const std::string& path, const nlohmann::json& identity) {
  const SafetensorsFile f = SafetensorsFile::read(path);
  const nlohmann::json meta = stored_identity(fs::path(path).parent_path().string());
  check(meta.at("identity") == identity, path,
        ": the run was made for other data or another model (stored ",
        meta.at("identity").dump(), ", given ", identity.dump(),
        "); resume with the same --data, --val and model flags");
  identity_ = identity;
  try {
    step_ = meta.at("step").get<int64_t>();
    best_step_ = meta.at("best_step").get<int64_t>();
    best_score_ = meta.at("best_score").get<double>();
    bad_evals_ = meta.at("bad_evals").get<int64_t>();
    stopped_ = meta.at("stopped").get<bool>();
    has_best_ = meta.at("has_best").get<bool>();
    const auto& steps = meta.at("adam_steps");
    check(steps.size() == groups_.size(), path, ": ", steps.size(), " optimiser states for ",
          groups_.size(), " parameter groups");
    for (size_t i = 0; i < groups_.size(); ++i) adam_[i]->set_steps(steps[i].get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    detail::fail_with(path, ": bad ", kStateKey, " metadata (", e.what(), ")");
  }
  for (size_t i = 0; i < groups_.size(); ++i) {
    const ParamGroup& g = groups_[i];
    auto load = [&](const std::string& name, float* dst) {
      const StTensor* t = f.find(name);
      check(t && t->numel() == g.layout->total, path, ": missing or mis-sized tensor ", name);
      f.to_float(*t, dst);
    };
    load(g.name + ".params", g.params);
    load(g.name + ".adam_m", adam_[i]->m().data());
    load(g.name + ".adam_v", adam_[i]->v().data());
    load(g.name + ".best", best_[i].data());
  }
}

void TaskRun::keep_best() {
  for (size_t i = 0; i < groups_.size(); ++i)
    best_[i].assign(groups_[i].params, groups_[i].params + groups_[i].layout->total);
  has_best_ = true;
  model_.save_files(dir_);
}

TaskRunResult TaskRun::train(const TaskRunObserver& obs) {
  const LrSchedule sched{opts_.lr, opts_.warmup, opts_.steps, opts_.min_lr_ratio, true};
  if (obs.on_start) obs.on_start(step_, opts_.steps);
  int64_t last_eval = -1;
  auto evaluate = [&]() {
    last_eval = step_;
    const TaskModel::Validation v = model_.validate();
    const bool improved = !has_best_ || v.score > best_score_;
    if (improved) {
      best_score_ = v.score;
      best_step_ = step_;
      bad_evals_ = 0;
      keep_best();
    } else {
      ++bad_evals_;
    }
    metrics_->write(EvalRecord{step_, v.loss});
    if (obs.on_eval) obs.on_eval(step_, v, improved);
    if (opts_.patience > 0 && bad_evals_ >= opts_.patience) stopped_ = true;
  };
  const auto asked_to_stop = [&] { return obs.stop && obs.stop->load(); };
  while (step_ < opts_.steps && !stopped_) {
    if (asked_to_stop()) {
      save_state();
      TaskRunResult r{step_, best_step_, best_score_, stopped_, model_.has_validation()};
      r.interrupted = true;
      return r;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (const ParamGroup& g : groups_) std::fill(g.grads, g.grads + g.layout->total, 0.f);
    const auto batch = batch_of(opts_.seed, step_, opts_.batch, model_.train_examples());
    int64_t tokens = 0;
    const double loss = model_.loss_and_grads(batch, opts_.seed ^ (static_cast<uint64_t>(step_) << 20), &tokens);
    const double norm = global_norm(groups_);
    StepRecord rec;
    rec.step = step_ + 1;
    rec.loss = loss;
    rec.grad_norm = norm;
    rec.lr = sched.at(step_);
    rec.skipped = !std::isfinite(loss) || !std::isfinite(norm);
    if (!rec.skipped) {
      const float scale = opts_.grad_clip > 0 && norm > opts_.grad_clip
                              ? static_cast<float>(opts_.grad_clip / norm) : 1.f;
      for (size_t i = 0; i < groups_.size(); ++i) {
        const ParamGroup& g = groups_[i];
        if (scale != 1.f)
          for (size_t k = 0; k < g.layout->total; ++k) g.grads[k] *= scale;
        adam_[i]->step(g.params, g.grads, rec.lr);
      }
    }
    ++step_;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rec.tokens_per_s = secs > 0 ? static_cast<double>(tokens) / secs : 0;
    metrics_->write(rec);
    if (obs.on_step) obs.on_step(rec);
    if (model_.has_validation() && opts_.eval_every > 0 && step_ % opts_.eval_every == 0)
      evaluate();
    if (step_ % opts_.save_every == 0) save_state();
  }
  if (model_.has_validation()) {
    if (last_eval != step_) evaluate();
  } else {
    keep_best();  // no validation: the last weights are the model
    best_step_ = step_;
  }
  save_state();
  return {step_, best_step_, best_score_, stopped_, model_.has_validation()};
}

}  // namespace difftx
