#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "train/evaluate.h"
#include "train/schedule.h"
#include "train/train_state.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {
const dist::Comm& single_process() {
  static const dist::Comm one;
  return one;
}

double global_norm(const float* g, size_t n) {
  double ss = 0;
#pragma omp parallel for simd reduction(+ : ss) schedule(static)
  for (size_t i = 0; i < n; ++i) ss += static_cast<double>(g[i]) * g[i];
  return std::sqrt(ss);
}
}  // namespace

Trainer::Trainer(Model& model, const TokenData& train, const TokenData* val,
                 const TrainOptions& opts, nlohmann::json stored_options, std::string model_dir,
                 const dist::Comm* comm)
    : model_(model), train_(train), val_(val), opts_(opts),
      stored_options_(std::move(stored_options)), dir_(std::move(model_dir)),
      opt_(model.layout, AdamWConfig{0.9, 0.95, 1e-8, opts.weight_decay, false}),
      comm_(comm ? comm : &single_process()) {
  check_field(opts_.batch % comm_->size() == 0, "batch", " (", opts_.batch,
              ") is the global batch and must divide evenly over the ", comm_->size(),
              " ranks; use a multiple of ", comm_->size());
  if (opts_.warmup < 0) opts_.warmup = opts_.steps / 20;
  check_field(train_.size() >= opts_.seq + 1, "seq", " + 1 = ", opts_.seq + 1,
              " tokens make one window, more than the training data's ", train_.size(),
              " tokens; use more data or a shorter seq");
  if (val_)
    check_field(val_->size() >= opts_.seq + 1, "seq", " + 1 = ", opts_.seq + 1,
                " tokens make one window, more than the validation data's ", val_->size(),
                " tokens; use more validation data or a shorter seq");
}

void Trainer::save_to(const std::string& dir) const {
  const ParamLayout& L = model_.layout;
  const int64_t total = static_cast<int64_t>(L.total);
  TrainStateMeta meta;
  meta.step = step_;
  meta.skipped = skipped_total_;
  meta.adam_steps = opt_.steps();
  meta.options = stored_options_;
  meta.config = nlohmann::json::parse(config_to_json(model_.config));
  write_safetensors((fs::path(dir) / kTrainStateFile).string(),
                    {{"params", {total}, model_.params.data()},
                     {"adam_m", {total}, opt_.m().data()},
                     {"adam_v", {total}, opt_.v().data()}},
                    {{kTrainStateKey, train_state_meta_to_text(meta)}});
  write_model_files(dir, model_);
}

void Trainer::resume(const SafetensorsFile& f, const TrainStateMeta& meta, const std::string& path) {
  const size_t total = model_.layout.total;
  auto load = [&](const char* name, float* dst) {
    const StTensor* t = f.find(name);
    check(t && t->numel() == total, path, ": missing or mis-sized tensor ", name);
    f.to_float(*t, dst);
  };
  load("params", model_.params.data());
  load("adam_m", opt_.m().data());
  load("adam_v", opt_.v().data());
  step_ = meta.step;
  skipped_total_ = meta.skipped;
  opt_.set_steps(meta.adam_steps);
}

void Trainer::check_same_weights() const {
  if (comm_->size() == 1) return;
  const auto sums = comm_->gather_all(dist::checksum(model_.params.data(), model_.layout.total));
  for (int r = 1; r < comm_->size(); ++r)
    check(sums[static_cast<size_t>(r)] == sums[0], "the weights of rank ", r,
          " diverged from rank 0's at step ", step_,
          " (checksums differ); the ranks' arithmetic is not identical, resume from the last "
          "checkpoint");
}

double Trainer::evaluate() const {
  if (!val_) return NAN;
  EvalSpec spec;
  spec.seq = opts_.seq;
  spec.batch = opts_.batch;
  spec.max_tokens = opts_.eval_windows * opts_.seq;
  spec.precision = opts_.precision;
  return evaluate_loss(model_, *val_, spec).loss;
}

bool Trainer::run(const TrainObserver& obs, const std::atomic<bool>* stop) {
  using Clock = std::chrono::steady_clock;
  const int64_t B = opts_.batch, T = opts_.seq;
  const int64_t ranks = comm_->size(), local_B = B / ranks, first_row = comm_->rank() * local_B;
  const LrSchedule sched{opts_.lr, opts_.warmup, opts_.steps, opts_.min_lr_ratio, opts_.cosine};
  AlignedFloats grads(model_.layout.total);
  Activations acts;
  RunOptions run;
  run.precision = opts_.precision;
  std::vector<int32_t> windows, inputs(static_cast<size_t>(local_B * T)), targets(inputs.size());
  int64_t bad_in_a_row = 0;
  while (step_ < opts_.steps) {
    // Stopping is decided together, so that no rank waits in a collective for one that left.
    double stopping = stop && stop->load() ? 1 : 0;
    comm_->sum(&stopping, 1);
    if (stopping > 0) {
      if (comm_->root()) save();
      if (obs.on_save) obs.on_save(step_, dir_);
      return false;
    }
    const auto t0 = Clock::now();
    grads.zero();
    double loss = 0;
    for (int64_t micro = 0; micro < opts_.accum; ++micro) {
      train_.sample_windows(opts_.seed, step_ * opts_.accum + micro, B, T, windows);
      // This rank's rows of the global batch (all of it with one rank).
      for (int64_t b = 0; b < local_B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          inputs[b * T + t] = windows[(first_row + b) * (T + 1) + t];
          targets[b * T + t] = windows[(first_row + b) * (T + 1) + t + 1];
        }
      // Every rank scores local_B * T tokens: the global mean is the mean of the ranks' means.
      loss += forward(model_, inputs.data(), targets.data(), local_B, T, acts, run) /
              static_cast<double>(opts_.accum * ranks);
      backward(model_, acts, grads.data(), 1.0 / static_cast<double>(opts_.accum * ranks));
    }
    const auto t_reduce = Clock::now();
    comm_->sum(grads.data(), model_.layout.total);
    comm_->sum(&loss, 1);
    const double reduce_s = std::chrono::duration<double>(Clock::now() - t_reduce).count();
    const double norm = global_norm(grads.data(), model_.layout.total);
    const double lr = sched.at(step_);
    const bool finite = std::isfinite(loss) && std::isfinite(norm);
    if (finite) {
      bad_in_a_row = 0;
      if (opts_.grad_clip > 0 && norm > opts_.grad_clip) {
        const float s = static_cast<float>(opts_.grad_clip / norm);
        float* g = grads.data();
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < model_.layout.total; ++i) g[i] *= s;
      }
      opt_.step(model_.params.data(), grads.data(), lr);
    } else {
      ++skipped_total_;
      if (++bad_in_a_row >= opts_.max_bad_steps)
        throw Error("training diverged: " + std::to_string(bad_in_a_row) +
                    " steps in a row had a non-finite loss or gradient (step " +
                    std::to_string(step_ + 1) +
                    "); lower the learning rate or continue from an earlier checkpoint");
    }
    ++step_;
    const bool saving = (opts_.save_every > 0 && step_ % opts_.save_every == 0) || step_ == opts_.steps;
    if (saving || step_ % kChecksumEvery == 0) check_same_weights();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (obs.on_step)  // every step: metrics.jsonl keeps them all; the CLI thins its printing
      obs.on_step({step_, loss, lr, norm, static_cast<double>(B * T * opts_.accum) / secs, !finite,
                   reduce_s});
    if (comm_->root() && val_ && opts_.eval_every > 0 && (step_ % opts_.eval_every == 0 || step_ == opts_.steps) &&
        obs.on_eval)
      obs.on_eval({step_, evaluate()});
    if (saving) {
      if (comm_->root()) save();
      if (obs.on_save) obs.on_save(step_, dir_);
    }
  }
  return true;
}

}  // namespace difftx
