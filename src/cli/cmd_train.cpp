#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "analysis/attention_stats.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "model/presets.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace difftx::cli {
namespace {
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}
}  // namespace

Runner add_train(CLI::App& app) {
  struct Opts {
    std::string data, val, out, config, preset, tokenizer = "byte", precision = "fp32",
        schedule = "cosine", cache_dir;
    TrainOptions t;
    bool resume = false;
    int threads = 0;
    int64_t attn_stats_every = 0;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--data", o->data, "training text: a file, a folder or a glob")->required();
  app.add_option("--val", o->val, "validation text (file, folder or glob)");
  app.add_option("--out", o->out, "model directory to create (or continue with --resume)")->required();
  auto* cfg = app.add_option("--config", o->config, "config.json with the model's sizes");
  auto* pre = app.add_option("--preset", o->preset, "named size: tiny-diff, tiny-llama, small-diff, small-llama, ref-diff, ref-llama");
  cfg->excludes(pre);
  app.add_option("--tokenizer", o->tokenizer, "byte, gpt2 or spm:FILE.model")->capture_default_str();
  app.add_option("--steps", o->t.steps, "optimizer steps")->required();
  app.add_option("--batch", o->t.batch, "sequences per micro-batch")->required();
  app.add_option("--seq", o->t.seq, "tokens per sequence")->required();
  app.add_option("--lr", o->t.lr, "peak learning rate")->capture_default_str();
  app.add_option("--min-lr-ratio", o->t.min_lr_ratio, "final lr as a share of the peak")->capture_default_str();
  app.add_option("--schedule", o->schedule, "decay after warm-up: cosine or linear")
      ->check(CLI::IsMember({"cosine", "linear"}))->capture_default_str();
  app.add_option("--warmup", o->t.warmup, "warm-up steps (default 5% of --steps)");
  app.add_option("--weight-decay", o->t.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app.add_option("--grad-clip", o->t.grad_clip, "clip the global gradient norm (0: off)")->capture_default_str();
  app.add_option("--accum", o->t.accum, "micro-batches per step")->capture_default_str();
  app.add_option("--seed", o->t.seed, "seed for initial weights and data order")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--save-every", o->t.save_every, "checkpoint every N steps (and at the end)")->capture_default_str();
  app.add_option("--eval-every", o->t.eval_every, "validation loss every N steps")->capture_default_str();
  app.add_option("--eval-windows", o->t.eval_windows, "validation windows per evaluation")->capture_default_str();
  app.add_option("--log-every", o->t.log_every, "print a line every N steps when not on a terminal")->capture_default_str();
  app.add_option("--max-bad-steps", o->t.max_bad_steps, "stop after N non-finite steps in a row")->capture_default_str();
  app.add_option("--precision", o->precision, "fp32 or bf16 matrix products")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  app.add_option("--cache-dir", o->cache_dir, "where tokenised data is cached (default ~/.cache/difftx)");
  app.add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  app.add_option("--attn-stats-every", o->attn_stats_every,
                 "log attention statistics (sparsity, entropy, lambda, outliers) to metrics.jsonl "
                 "every N steps, on a fixed window (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_flag("--resume", o->resume, "continue the run in --out from its last checkpoint");
  return [o]() {
    TrainOptions t = o->t;
    check(o->threads >= 0 && o->threads <= 1024, "--threads must be in [1, 1024]");
    if (o->threads > 0) omp_set_num_threads(o->threads);
    check(t.steps >= 1, "--steps must be >= 1");
    check(t.batch >= 1 && t.batch <= 4096, "--batch must be in [1, 4096]");
    check(t.seq >= 1, "--seq must be >= 1");
    check(t.accum >= 1, "--accum must be >= 1");
    check(t.lr > 0 && t.lr < 10, "--lr must be in (0, 10)");
    check(t.min_lr_ratio >= 0 && t.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]");
    check(t.weight_decay >= 0, "--weight-decay must be >= 0");
    check(t.grad_clip >= 0, "--grad-clip must be >= 0");
    check(t.warmup >= -1 && t.warmup <= t.steps, "--warmup must be in [0, --steps]");
    check(t.save_every >= 0 && t.eval_every >= 0, "--save-every and --eval-every must be >= 0");
    check(t.eval_windows >= 1 && t.log_every >= 1 && t.max_bad_steps >= 1,
          "--eval-windows, --log-every and --max-bad-steps must be >= 1");
    t.cosine = o->schedule == "cosine";
    t.precision = o->precision == "bf16" ? Precision::kBF16 : Precision::kFP32;
    const std::string cache_dir = o->cache_dir.empty() ? default_cache_dir() : o->cache_dir;

    std::unique_ptr<Model> model;
    std::unique_ptr<Tokenizer> tok;
    if (o->resume) {
      model = load_model(o->out);
      tok = load_tokenizer(o->out);
      if (!o->config.empty() || !o->preset.empty()) {
        const Config want = !o->config.empty() ? load_config(o->config, LayoutDefaults::kOfficial)
                                               : preset_config(o->preset, tok->vocab_size());
        check(config_to_json(want) == config_to_json(model->config),
              "--resume: " + o->out + " holds a run of another model config; use a new --out");
      }
    } else {
      check(!o->config.empty() || !o->preset.empty(), "give --config FILE.json or --preset NAME");
      std::error_code ec;
      check(!fs::exists(o->out, ec) || (fs::is_directory(o->out, ec) && fs::is_empty(o->out, ec)),
            o->out + " already exists and is not empty; use --resume to continue it or a new --out");
      tok = make_tokenizer(o->tokenizer);
      const Config c = !o->config.empty() ? load_config(o->config, LayoutDefaults::kOfficial)
                                          : preset_config(o->preset, tok->vocab_size());
      check(c.vocab_size >= tok->vocab_size(),
            "the config's vocab_size (" + std::to_string(c.vocab_size) + ") is smaller than the " +
                tok->kind() + " tokenizer's (" + std::to_string(tok->vocab_size()) + ")");
      model = std::make_unique<Model>(c);
      init_parameters(*model, t.seed);
    }
    check(t.seq <= model->config.max_position_embeddings,
          "--seq exceeds max_position_embeddings (" +
              std::to_string(model->config.max_position_embeddings) + ")");
    const auto train_data = TokenData::open(o->data, *tok, cache_dir);
    const auto val_data = o->val.empty() ? nullptr : TokenData::open(o->val, *tok, cache_dir);
    Trainer trainer(*model, *train_data, val_data.get(), t, o->out);
    if (o->resume) {
      trainer.resume();
    } else {
      // The directory is complete and resumable from step 0 before training starts.
      StagedDirectory staged(o->out);
      tok->save(staged.path());
      write_model_files(staged.path(), *model);
      trainer.save_to(staged.path());
      staged.commit();
    }
    MetricsLog metrics(o->out, o->resume ? trainer.step() : -1);

    const bool tty = ::isatty(STDERR_FILENO) != 0;
    const auto start = std::chrono::steady_clock::now();
    const int64_t first = trainer.step();
    std::fprintf(stderr, "training %s (%zu parameters) on %lld tokens%s, steps %lld..%lld\n",
                 model->config.is_diff() ? "diffllama" : "llama", model->layout.num_parameters(),
                 static_cast<long long>(train_data->size()),
                 val_data ? (" (validation " + std::to_string(val_data->size()) + ")").c_str() : "",
                 static_cast<long long>(first + 1), static_cast<long long>(t.steps));
    // Attention monitoring on one fixed window (validation data when given), every N steps.
    std::vector<int32_t> probe(static_cast<size_t>(std::min<int64_t>(t.seq, 256) + 1));
    (val_data ? *val_data : *train_data).even_window(0, 1, static_cast<int64_t>(probe.size()) - 1, probe.data());
    probe.pop_back();
    auto log_attention = [&](int64_t step) {
      StatisticsOptions so;
      so.activations = true;
      const auto st = attention_statistics(*model, probe.data(), 1, static_cast<int64_t>(probe.size()), so);
      metrics.write(monitoring_record(st, step).dump());
    };
    TrainObserver obs;
    obs.on_step = [&](const StepLog& s) {
      metrics.write(nlohmann::json{{"step", s.step}, {"loss", s.loss}, {"lr", s.lr},
                                   {"grad_norm", s.grad_norm}, {"tokens_per_s", s.tokens_per_s},
                                   {"skipped", s.skipped}}.dump());
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta = elapsed / static_cast<double>(s.step - first) * static_cast<double>(t.steps - s.step);
      if (o->attn_stats_every > 0 && s.step % o->attn_stats_every == 0) log_attention(s.step);
      if (s.skipped)
        std::fprintf(stderr, "%sstep %lld: non-finite loss or gradient, update skipped\n",
                     tty ? "\n" : "", static_cast<long long>(s.step));
      if (tty) {
        const int width = 30, done = static_cast<int>(width * s.step / t.steps);
        std::fprintf(stderr, "\r[%s%s] %lld/%lld loss %.4f  %.0f tok/s  ETA %s   ",
                     std::string(done, '#').c_str(), std::string(width - done, '.').c_str(),
                     static_cast<long long>(s.step), static_cast<long long>(t.steps), s.loss,
                     s.tokens_per_s, format_duration(eta).c_str());
      } else if (s.step % t.log_every == 0 || s.step == t.steps) {
        std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e grad_norm %.3f %.0f tok/s ETA %s\n",
                     static_cast<long long>(s.step), static_cast<long long>(t.steps), s.loss,
                     s.lr, s.grad_norm, s.tokens_per_s, format_duration(eta).c_str());
      }
    };
    obs.on_eval = [&](int64_t step, double val_loss) {
      metrics.write(nlohmann::json{{"step", step}, {"val_loss", val_loss}}.dump());
      std::fprintf(stderr, "%sstep %lld: validation loss %.4f\n", tty ? "\n" : "",
                   static_cast<long long>(step), val_loss);
    };
    g_interrupted.store(false);
    std::signal(SIGINT, on_sigint);
    const bool finished = trainer.run(obs, &g_interrupted);
    std::signal(SIGINT, SIG_DFL);
    if (tty) std::fprintf(stderr, "\n");
    if (trainer.skipped_steps() > 0)
      std::fprintf(stderr, "%lld steps were skipped for non-finite values\n",
                   static_cast<long long>(trainer.skipped_steps()));
    if (!finished) {
      std::fprintf(stderr, "interrupted: saved step %lld in %s; continue with --resume\n",
                   static_cast<long long>(trainer.step()), o->out.c_str());
      return 130;
    }
    std::printf("trained %s to step %lld\n", o->out.c_str(), static_cast<long long>(trainer.step()));
    return 0;
  };
}

}  // namespace difftx::cli
