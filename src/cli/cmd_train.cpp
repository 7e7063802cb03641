// difftx train: flags, signals and the progress display; the run itself is TrainRun's.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <omp.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/stop_signals.h"
#include "core/error.h"
#include "dist/comm.h"
#include "train/run.h"

namespace difftx::cli {
namespace {
std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

// Flags that name a field of RunSettings (the rest: --out, --config, --preset, --resume,
// --cache-dir, --threads). Given ones are the fields a resume must check.
const char* const kSettingFlags[] = {
    "--data",         "--val",          "--tokenizer",  "--steps",        "--batch",
    "--seq",          "--lr",           "--min-lr-ratio", "--schedule",   "--warmup",
    "--weight-decay", "--grad-clip",    "--accum",      "--seed",         "--save-every",
    "--eval-every",   "--eval-windows", "--log-every",  "--max-bad-steps", "--precision",
    "--attn-stats-every"};

std::string field_of_flag(std::string flag) {
  flag = flag.substr(2);
  for (char& c : flag)
    if (c == '-') c = '_';
  return flag;
}

int train_ranks(const RunRequest& req, const dist::Comm& comm);
int train_and_report(TrainRun& run, const RunRequest& req, const dist::Comm& comm);

// Trains; with several ranks, an error on this rank ends the job (the others may be waiting
// in a collective for this one), after saying which rank failed.
bool train_or_abort(TrainRun& run, const RunObserver& obs, const StopSignals& signals,
                    const dist::Comm& comm) {
  if (comm.size() == 1) return run.train(obs, signals.flag());
  try {
    return run.train(obs, signals.flag());
  } catch (const Error& e) {
    std::fprintf(stderr, "difftx: error: rank %d: %s\n", comm.rank(), user_message(e).c_str());
    comm.abort(2);
  }
}
}  // namespace

Runner add_train(CLI::App& app) {
  struct Opts {
    RunRequest req;
    TokenSource tokens;
    std::string schedule = "cosine";
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  RunSettings& s = o->req.settings;
  TrainOptions& t = s.train;
  app.footer(
      "A new run needs --data, --out, --steps, --batch, --seq and --config or --preset. "
      "--resume continues the run in --out with the options stored in its checkpoint: give no "
      "other flag, or only ones that do not change the run (--steps to extend it, --save-every, "
      "--eval-every, --log-every, --max-bad-steps, --attn-stats-every, --threads, --cache-dir); "
      "any other flag must equal its stored value. val_loss is the token-weighted mean loss over "
      "the first --eval-windows x --seq tokens of --val, in consecutive windows of --seq (as "
      "`difftx eval --seq S --batch B --max-tokens N` computes it). SIGINT and SIGTERM save the "
      "run and exit with 130 and 143.");
  add_token_source(app, o->tokens, "training text: a file, a folder or a glob");
  app.add_option("--val", s.val, "validation text (file, folder or glob)");
  app.add_option("--out", o->req.dir, "run directory to create (or continue with --resume)")->required();
  auto* cfg = app.add_option("--config", o->req.config_path, "config.json with the model's sizes");
  auto* pre = app.add_option("--preset", o->req.preset,
                             "named size: {tiny,small,ref}-{diff,diffv2,llama}");
  cfg->excludes(pre);
  add_tokenizer_spec(app, s.tokenizer);
  app.add_option("--steps", t.steps, "optimizer steps (on resume: may extend the run)")
      ->check(integer_in(1, int64_t{1} << 40));
  add_batch(app, t.batch, "sequences per micro-batch");
  add_seq(app, t.seq, "tokens per sequence");
  app.add_option("--lr", t.lr, "peak learning rate")->check(real_in(0, 10))->capture_default_str();
  app.add_option("--min-lr-ratio", t.min_lr_ratio, "final lr as a share of the peak")
      ->check(real_in(0, 1))->capture_default_str();
  app.add_option("--schedule", o->schedule, "decay after warm-up: cosine or linear")
      ->check(CLI::IsMember({"cosine", "linear"}))->capture_default_str();
  app.add_option("--warmup", t.warmup, "warm-up steps (default 5% of --steps)")
      ->check(integer_in(0, int64_t{1} << 40));
  app.add_option("--weight-decay", t.weight_decay, "AdamW decoupled weight decay")
      ->check(real_in(0, 10))->capture_default_str();
  app.add_option("--grad-clip", t.grad_clip, "clip the global gradient norm (0: off)")
      ->check(real_in(0, 1e30))->capture_default_str();
  app.add_option("--accum", t.accum, "micro-batches per step")->check(integer_in(1, 4096))->capture_default_str();
  add_seed(app, t.seed, "seed for initial weights and data order");
  app.add_option("--save-every", t.save_every, "checkpoint every N steps (and at the end; 0: end only)")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
  app.add_option("--eval-every", t.eval_every, "validation loss every N steps (0: off)")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
  app.add_option("--eval-windows", t.eval_windows, "val_loss scores the first N x --seq validation tokens")
      ->check(integer_in(1, int64_t{1} << 20))->capture_default_str();
  app.add_option("--log-every", t.log_every, "print a line every N steps when not on a terminal")
      ->check(integer_in(1, int64_t{1} << 40))->capture_default_str();
  app.add_option("--max-bad-steps", t.max_bad_steps, "stop after N non-finite steps in a row")
      ->check(integer_in(1, int64_t{1} << 40))->capture_default_str();
  add_precision(app, t.precision);
  add_threads(app, o->threads);
  app.add_option("--attn-stats-every", s.attn_stats_every,
                 "log attention statistics (sparsity, entropy, lambda, outliers) to metrics.jsonl "
                 "every N steps, on a fixed window (0: off)")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
  app.add_flag("--resume", o->req.resume, "continue the run in --out from its last checkpoint");
  return [o, &app]() {
    RunRequest req = o->req;
    req.settings.data = o->tokens.data;
    req.settings.train.cosine = o->schedule == "cosine";
    req.cache_dir = o->tokens.token_cache_dir();
    for (const char* flag : kSettingFlags)
      if (app.count(flag) > 0) req.given.insert(field_of_flag(flag));
    if (!req.resume) {
      for (const char* flag : {"--data", "--steps", "--batch", "--seq"})
        check(app.count(flag) > 0, flag, " is required for a new run (or give --resume)");
      check(!req.config_path.empty() || !req.preset.empty(),
            "give --config FILE.json or --preset NAME for a new run");
    }
    const dist::Comm& comm = dist::world();
    // Ranks x threads = cores by default (mpirun starts the ranks of a host on its cores).
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    apply_threads(o->threads > 0 || comm.size() == 1
                      ? o->threads
                      : std::max(1, static_cast<int>(cores) / comm.local_size()));
    req.comm = &comm;
    try {
      return train_ranks(req, comm);
    } catch (const Error&) {
      if (!comm.root()) return 2;  // every rank failed alike; rank 0 alone says why
      throw;
    }
  };
}

namespace {
// One rank's part of the run: rank 0 builds the run (creating the directory) before the other
// ranks read it; then all must agree on what they train before the first step.
int train_ranks(const RunRequest& req, const dist::Comm& comm) {
  // The flags first, before rank 0 creates anything.
  std::string asked = settings_to_json(req.settings).dump() + req.dir + req.config_path + req.preset +
                      (req.resume ? "resume" : "new");
  for (const auto& g : req.given) asked += "," + g;
  const auto flags = comm.gather_all(dist::fnv1a(asked.data(), asked.size()));
  for (int r = 1; r < comm.size(); ++r)
    check(flags[static_cast<size_t>(r)] == flags[0], "rank ", r,
          " was started with other flags than rank 0; start every rank with the same flags");
  std::unique_ptr<TrainRun> built;
  comm.together([&] { if (comm.root()) built = std::make_unique<TrainRun>(req); });
  comm.together([&] { if (!comm.root()) built = std::make_unique<TrainRun>(req); });
  TrainRun& run = *built;
  const auto prints = comm.gather_all(run.fingerprint());
  for (int r = 1; r < comm.size(); ++r)
    check(prints[static_cast<size_t>(r)] == prints[0], "rank ", r,
          " disagrees with rank 0 on the options, data, model or checkpoint of ", req.dir,
          "; start every rank with the same flags and the same data");
  if (!comm.root()) {  // rank 0 reports; a stop signal is honoured by all ranks at one step
    StopSignals signals;
    train_or_abort(run, {}, signals, comm);
    return signals.signal() ? 128 + signals.signal() : 0;
  }
  return train_and_report(run, req, comm);
}

// Rank 0's (or the only process's) part: the progress display and the final report.
int train_and_report(TrainRun& run, const RunRequest& req, const dist::Comm& comm) {
  {
    release_warnings();  // set-up is over: from here on, warnings show when they happen
    const RunSettings& rs = run.settings();
    const int64_t steps = rs.train.steps, log_every = rs.train.log_every;
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    const auto start = std::chrono::steady_clock::now();
    const int64_t first = run.step();
    if (first >= steps) {
      std::printf("%s is already trained to step %lld of %lld (extend it with --steps N)\n",
                  req.dir.c_str(), static_cast<long long>(first), static_cast<long long>(steps));
      return 0;
    }
    std::fprintf(stderr, "training %s (%zu parameters) on %lld tokens%s, steps %lld..%lld%s\n",
                 model_type_name(run.model().config.model_type),
                 run.model().layout.num_parameters(), static_cast<long long>(run.train_tokens()),
                 run.val_tokens() ? (" (validation " + std::to_string(run.val_tokens()) + ")").c_str() : "",
                 static_cast<long long>(first + 1), static_cast<long long>(steps),
                 comm.size() > 1 ? (", " + std::to_string(comm.size()) + " ranks x " +
                                    std::to_string(omp_get_max_threads()) + " threads").c_str()
                                 : "");
    StopSignals signals;
    RunObserver obs;
    obs.on_step = [&](const StepRecord& r) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta = elapsed / static_cast<double>(r.step - first) * static_cast<double>(steps - r.step);
      if (r.skipped)
        std::fprintf(stderr, "%sstep %lld: non-finite loss or gradient, update skipped\n",
                     tty ? "\n" : "", static_cast<long long>(r.step));
      if (tty) {
        const int width = 30, done = static_cast<int>(width * r.step / steps);
        std::fprintf(stderr, "\r[%s%s] %lld/%lld loss %.4f  %.0f tok/s%s  ETA %s   ",
                     std::string(done, '#').c_str(), std::string(width - done, '.').c_str(),
                     static_cast<long long>(r.step), static_cast<long long>(steps), r.loss,
                     r.tokens_per_s,
                     comm.size() > 1 ? (" on " + std::to_string(comm.size()) + " ranks").c_str() : "",
                     format_duration(eta).c_str());
      } else if (r.step % log_every == 0 || r.step == steps) {
        std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e grad_norm %.3f %.0f tok/s ETA %s%s\n",
                     static_cast<long long>(r.step), static_cast<long long>(steps), r.loss, r.lr,
                     r.grad_norm, r.tokens_per_s, format_duration(eta).c_str(),
                     comm.size() > 1 ? (" (" + std::to_string(comm.size()) + " ranks, all-reduce " +
                                        std::to_string(static_cast<int>(r.allreduce_s * 1e3)) + " ms)").c_str()
                                     : "");
      }
    };
    obs.on_eval = [&](const EvalRecord& r) {
      std::fprintf(stderr, "%sstep %lld: validation loss %.4f\n", tty ? "\n" : "",
                   static_cast<long long>(r.step), r.val_loss);
    };
    const bool finished = train_or_abort(run, obs, signals, comm);
    if (tty) std::fprintf(stderr, "\n");
    if (run.skipped_steps() > 0)
      std::fprintf(stderr, "%lld steps were skipped for non-finite values\n",
                   static_cast<long long>(run.skipped_steps()));
    if (!finished) return signals.report_stop(run.step(), req.dir);
    std::printf("trained %s to step %lld\n", req.dir.c_str(), static_cast<long long>(run.step()));
    return 0;
  }
}
}  // namespace

}  // namespace difftx::cli
