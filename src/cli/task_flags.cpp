#include "cli/task_flags.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/options.h"
#include "cli/output.h"
#include "core/files.h"

namespace difftx::cli {

void add_task_train_flags(CLI::App& app, TaskTrainOptions& o) {
  app.add_option("--steps", o.steps, "optimiser steps")->check(integer_in(1, int64_t{1} << 40))
      ->capture_default_str();
  add_batch(app, o.batch, "examples per step");
  app.add_option("--lr", o.lr, "peak learning rate")->check(real_in(1e-12, 10))->capture_default_str();
  app.add_option("--warmup", o.warmup, "warm-up steps (default: 5% of --steps)")
      ->check(integer_in(0, int64_t{1} << 40));
  app.add_option("--min-lr-ratio", o.min_lr_ratio, "final lr / peak lr (cosine decay)")
      ->check(real_in(0, 1))->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (matrices only)")
      ->check(real_in(0, 10))->capture_default_str();
  app.add_option("--grad-clip", o.grad_clip, "clip the global gradient norm (0: off)")
      ->check(real_in(0, 1e9))->capture_default_str();
  add_seed(app, o.seed, "seed of the initialisation, batches and dropout");
  app.add_option("--eval-every", o.eval_every, "validate every N steps (0: only at the end)")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
  app.add_option("--patience", o.patience,
                 "stop after N validations without improvement (0: never)")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
  app.add_option("--save-every", o.save_every, "write the resumable state every N steps")
      ->check(integer_in(1, int64_t{1} << 40))->capture_default_str();
}

TaskRunObserver task_progress(int64_t log_every) {
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  struct Span {
    std::chrono::steady_clock::time_point start;
    int64_t first = 0, steps = 1;
  };
  auto span = std::make_shared<Span>();
  TaskRunObserver obs;
  obs.on_start = [span](int64_t step, int64_t steps) {
    *span = {std::chrono::steady_clock::now(), step, steps};
    std::fprintf(stderr, "training steps %lld..%lld\n", static_cast<long long>(step + 1),
                 static_cast<long long>(steps));
  };
  obs.on_step = [=](const StepRecord& r) {
    const auto start = &span->start;
    const int64_t* first = &span->first;
    const int64_t steps = span->steps;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - *start).count();
    const double eta = elapsed / static_cast<double>(r.step - *first) * static_cast<double>(steps - r.step);
    if (tty) {
      const int width = 30, done = static_cast<int>(width * r.step / steps);
      std::fprintf(stderr, "\r[%s%s] %lld/%lld loss %.4f  %.0f tok/s  ETA %.0fs   ",
                   std::string(static_cast<size_t>(done), '#').c_str(),
                   std::string(static_cast<size_t>(width - done), '.').c_str(),
                   static_cast<long long>(r.step), static_cast<long long>(steps), r.loss,
                   r.tokens_per_s, eta);
    } else if (r.step % log_every == 0 || r.step == steps) {
      std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e grad_norm %.3f %.0f tok/s ETA %.0fs\n",
                   static_cast<long long>(r.step), static_cast<long long>(steps), r.loss, r.lr,
                   r.grad_norm, r.tokens_per_s, eta);
    }
  };
  obs.on_eval = [tty](int64_t step, const TaskModel::Validation& v, bool improved) {
    std::fprintf(stderr, "%sstep %lld: %s%s\n", tty ? "\n" : "", static_cast<long long>(step),
                 v.describe.c_str(), improved ? " (best so far, saved)" : "");
  };
  return obs;
}

void write_output(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") write_stdout(text);
  else write_file_atomic(path, text);
}

}  // namespace difftx::cli
