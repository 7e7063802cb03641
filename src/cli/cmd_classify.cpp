// difftx classify train|eval|predict: flags only; the work is src/tasks/classify.h's.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/stop_signals.h"
#include "cli/task_flags.h"
#include "core/error.h"
#include "tasks/classify.h"

namespace difftx::cli {
namespace {

void add_train(CLI::App& parent, Runner& runner, CLI::App*& sub) {
  sub = parent.add_subcommand("train", "Train a classification head (and the model under it)");
  struct Opts {
    ClassifyTrainRequest req;
    std::string head = "linear", pooling = "last", weights = "none";
    int threads = 0;
    int64_t log_every = 10;
  };
  auto o = std::make_shared<Opts>();
  CLI::App& app = *sub;
  app.footer("A new run needs --data, --out and one of --init-from, --preset or --config; "
             "--resume continues the run in --out with its stored options (--steps may grow). "
             "Early stopping keeps the weights of the best validation macro-F1.");
  app.add_option("--out", o->req.out, "run directory: the classifier (created)")->required();
  app.add_flag("--resume", o->req.resume, "continue the run in --out after a crash");
  app.add_option("--data", o->req.data, "training JSON lines {\"text\", \"label\"}");
  app.add_option("--val", o->req.val, "validation JSON lines (early stopping)");
  app.add_option("--init-from", o->req.init_from, "a trained language model directory");
  app.add_option("--preset", o->req.preset, "a model trained from scratch: tiny|small|ref-diff|llama");
  app.add_option("--config", o->req.config, "a model trained from scratch: config.json");
  add_tokenizer_spec(app, o->req.tokenizer);
  add_seq(app, o->req.seq, "texts are cut to their first N tokens")->capture_default_str();
  app.add_option("--head", o->head, "linear, or mlp (two layers with dropout)")
      ->check(CLI::IsMember({"linear", "mlp"}))->capture_default_str();
  app.add_option("--pooling", o->pooling, "last (token) or mean")
      ->check(CLI::IsMember({"last", "mean"}))->capture_default_str();
  app.add_option("--dropout", o->req.head.dropout, "dropout in the head")
      ->check(real_in(0, 0.95))->capture_default_str();
  app.add_option("--head-hidden", o->req.head.hidden, "width of the mlp head (default hidden_size)")
      ->check(integer_in(1, 1 << 20));
  app.add_option("--class-weights", o->weights, "none, or balanced (n / (K n_c))")
      ->check(CLI::IsMember({"none", "balanced"}))->capture_default_str();
  add_task_train_flags(app, o->req.opts);
  app.add_option("--log-every", o->log_every, "print a line every N steps (not on a terminal)")
      ->check(integer_in(1, int64_t{1} << 40))->capture_default_str();
  add_threads(app, o->threads);
  runner = [o, &app]() {
    ClassifyTrainRequest req = o->req;
    if (req.resume) {
      for (const char* flag : {"--data", "--val", "--init-from", "--preset", "--config", "--head",
                               "--pooling", "--dropout", "--class-weights", "--seq", "--batch",
                               "--lr", "--seed"})
        check(app.count(flag) == 0, flag, " cannot change a run being resumed (it keeps its "
              "stored value); give only --out, --resume and optionally --steps");
      if (app.count("--steps") > 0) req.resume_steps = req.opts.steps;
    } else {
      check(!req.data.empty(), "--data is required for a new run (or give --resume)");
      req.head.kind = parse_head_kind(o->head);
      req.head.pooling = parse_pooling(o->pooling);
      req.balanced = o->weights == "balanced";
    }
    apply_threads(o->threads);
    StopSignals signals;
    TaskRunObserver obs = task_progress(o->log_every);
    obs.stop = signals.flag();
    const TaskRunResult r = classify_train(req, obs);
    std::fprintf(stderr, "\n");
    if (r.interrupted) return signals.report_stop(r.steps, req.out);
    std::printf("%s\n", nlohmann::json{{"out", req.out}, {"steps", r.steps},
                                       {"best_step", r.best_step}, {"best_val_macro_f1", r.has_validation ? nlohmann::json(r.best_score) : nlohmann::json()},
                                       {"stopped_early", r.stopped_early}}.dump().c_str());
    return 0;
  };
}

void add_eval(CLI::App& parent, Runner& runner, CLI::App*& sub) {
  sub = parent.add_subcommand("eval", "Accuracy, macro-F1, per-class scores and confusion matrix");
  struct Opts {
    ClassifyEvalRequest req;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App& app = *sub;
  app.footer("--baseline adds a bag-of-words naive Bayes trained on the classifier's training "
             "file (or --baseline-train); without --model, only the baseline is computed.");
  app.add_option("--model", o->req.model, "classifier directory (from classify train)");
  app.add_option("--data", o->req.data, "JSON lines {\"text\", \"label\"}")->required();
  add_batch(app, o->req.batch, "texts per forward pass");
  app.add_flag("--baseline", o->req.baseline, "add the naive Bayes baseline");
  app.add_option("--baseline-train", o->req.baseline_train, "training file of the baseline");
  add_threads(app, o->threads);
  runner = [o]() {
    apply_threads(o->threads);
    nlohmann::json j;
    if (o->req.model.empty()) {
      check(o->req.baseline && !o->req.baseline_train.empty(),
            "give --model DIR, or --baseline with --baseline-train FILE");
      j = baseline_eval(o->req.baseline_train, o->req.data);
    } else {
      j = classify_eval(o->req);
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
}

void add_predict(CLI::App& parent, Runner& runner, CLI::App*& sub) {
  sub = parent.add_subcommand("predict", "The predicted label and class probabilities of each text");
  struct Opts {
    std::string model, data, out;
    int64_t batch = 16;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App& app = *sub;
  add_model_dir(app, o->model, "classifier directory (from classify train)");
  app.add_option("--data", o->data, "JSON lines with a \"text\" each")->required();
  app.add_option("--out", o->out, "write the JSON lines here (default: stdout)");
  add_batch(app, o->batch, "texts per forward pass");
  add_threads(app, o->threads);
  runner = [o]() {
    apply_threads(o->threads);
    write_output(o->out, classify_predict(o->model, o->data, o->batch));
    return 0;
  };
}

}  // namespace

Runner add_classify(CLI::App& app) {
  app.require_subcommand(1);
  struct Subs {
    CLI::App *train = nullptr, *eval = nullptr, *predict = nullptr;
    Runner run_train, run_eval, run_predict;
  };
  auto s = std::make_shared<Subs>();
  add_train(app, s->run_train, s->train);
  add_eval(app, s->run_eval, s->eval);
  add_predict(app, s->run_predict, s->predict);
  return [s]() {
    if (s->train->parsed()) return s->run_train();
    if (s->eval->parsed()) return s->run_eval();
    return s->run_predict();
  };
}

}  // namespace difftx::cli
