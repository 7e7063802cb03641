// difftx.train: the library's training run (train/run.h) as `difftx train` runs it, with an
// optional Python callback per step. The run trains with the GIL released; the callback
// takes it back. A callback returning False (or raising, or Ctrl-C) stops the run after a
// save, as SIGINT does for the CLI.
#include <pybind11/stl.h>

#include <atomic>
#include <functional>
#include <map>

#include "bindings.h"
#include "core/error.h"
#include "train/dataset.h"
#include "train/run.h"

namespace difftx::python {
namespace {

// The keyword options: the CLI's flags with '_' for '-', each writing its RunSettings field.
// Those that are RunSettings fields go into RunRequest::given (the resume check).
using Setter = std::function<void(RunRequest&, const py::handle&)>;
const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> table = [] {
    std::map<std::string, Setter> t;
    auto i64 = [](int64_t TrainOptions::*f) {
      return [f](RunRequest& r, const py::handle& v) { r.settings.train.*f = v.cast<int64_t>(); };
    };
    auto real = [](double TrainOptions::*f) {
      return [f](RunRequest& r, const py::handle& v) { r.settings.train.*f = v.cast<double>(); };
    };
    t["data"] = [](RunRequest& r, const py::handle& v) { r.settings.data = v.cast<std::string>(); };
    t["val"] = [](RunRequest& r, const py::handle& v) { r.settings.val = v.cast<std::string>(); };
    t["tokenizer"] = [](RunRequest& r, const py::handle& v) { r.settings.tokenizer = v.cast<std::string>(); };
    t["steps"] = i64(&TrainOptions::steps);
    t["batch"] = i64(&TrainOptions::batch);
    t["seq"] = i64(&TrainOptions::seq);
    t["accum"] = i64(&TrainOptions::accum);
    t["warmup"] = i64(&TrainOptions::warmup);
    t["save_every"] = i64(&TrainOptions::save_every);
    t["eval_every"] = i64(&TrainOptions::eval_every);
    t["eval_windows"] = i64(&TrainOptions::eval_windows);
    t["log_every"] = i64(&TrainOptions::log_every);
    t["max_bad_steps"] = i64(&TrainOptions::max_bad_steps);
    t["lr"] = real(&TrainOptions::lr);
    t["min_lr_ratio"] = real(&TrainOptions::min_lr_ratio);
    t["weight_decay"] = real(&TrainOptions::weight_decay);
    t["grad_clip"] = real(&TrainOptions::grad_clip);
    t["seed"] = [](RunRequest& r, const py::handle& v) { r.settings.train.seed = v.cast<uint64_t>(); };
    t["schedule"] = [](RunRequest& r, const py::handle& v) {
      const std::string s = v.cast<std::string>();
      if (s != "cosine" && s != "linear")
        throw py::value_error("schedule must be \"cosine\" or \"linear\", got \"" + s + "\"");
      r.settings.train.cosine = s == "cosine";
    };
    t["precision"] = [](RunRequest& r, const py::handle& v) {
      r.settings.train.precision = precision_named(v.cast<std::string>());
    };
    t["attn_stats_every"] = [](RunRequest& r, const py::handle& v) {
      r.settings.attn_stats_every = v.cast<int64_t>();
    };
    return t;
  }();
  return table;
}

py::dict step_dict(const StepRecord& r) {
  py::dict d;
  d["step"] = r.step;
  d["loss"] = r.loss;
  d["lr"] = r.lr;
  d["grad_norm"] = r.grad_norm;
  d["tokens_per_s"] = r.tokens_per_s;
  d["skipped"] = r.skipped;
  return d;
}

py::dict train(const std::string& out, const std::optional<std::string>& config,
               const std::optional<std::string>& preset, bool resume,
               const std::optional<std::string>& cache_dir, const py::object& callback,
               const py::kwargs& options) {
  RunRequest req;
  req.dir = out;
  req.resume = resume;
  if (config) req.config_path = *config;
  if (preset) req.preset = *preset;
  req.cache_dir = cache_dir ? *cache_dir : default_cache_dir();
  for (const auto& [key, value] : options) {
    const std::string name = key.cast<std::string>();
    const auto it = setters().find(name);
    if (it == setters().end()) throw py::value_error("train() got an unknown option \"" + name + "\"");
    try {
      it->second(req, value);
    } catch (const py::cast_error&) {
      throw py::value_error("train() option \"" + name + "\" has the wrong type (" +
                            py::str(py::type::of(value).attr("__name__")).cast<std::string>() + ")");
    }
    req.given.insert(name);
  }
  if (!resume) {
    for (const char* needed : {"data", "steps", "batch", "seq"})
      if (!req.given.count(needed))
        throw py::value_error(std::string(needed) + " is required for a new run (or give resume=True)");
    if (req.config_path.empty() && req.preset.empty())
      throw py::value_error("give config=FILE.json or preset=NAME for a new run");
    if (!req.config_path.empty() && !req.preset.empty())
      throw py::value_error("give config or preset, not both");
  }

  std::atomic<bool> stop{false};
  std::exception_ptr callback_error;
  RunObserver obs;
  obs.on_step = [&](const StepRecord& r) {
    py::gil_scoped_acquire acquire;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (!callback.is_none()) {
        const py::object answer = callback(step_dict(r));
        if (answer.is(py::bool_(false))) stop = true;
      }
    } catch (...) {
      callback_error = std::current_exception();
      stop = true;
    }
  };
  bool finished = false;
  int64_t step = 0, skipped = 0;
  {
    py::gil_scoped_release release;
    TrainRun run(req);
    finished = run.train(obs, &stop);
    step = run.step();
    skipped = run.skipped_steps();
  }
  if (callback_error) std::rethrow_exception(callback_error);
  py::dict d;
  d["dir"] = out;
  d["step"] = step;
  d["finished"] = finished;
  d["skipped_steps"] = skipped;
  return d;
}

}  // namespace

void bind_train(py::module_& m) {
  m.def("train", &train, py::arg("out"), py::kw_only(), py::arg("config") = py::none(),
        py::arg("preset") = py::none(), py::arg("resume") = false,
        py::arg("cache_dir") = py::none(), py::arg("callback") = py::none(),
        "Train a model into `out` as `difftx train` does. Options are the CLI's flags with "
        "'_' for '-' (data, val, tokenizer, steps, batch, seq, lr, min_lr_ratio, schedule, "
        "warmup, weight_decay, grad_clip, accum, seed, save_every, eval_every, eval_windows, "
        "log_every, max_bad_steps, precision, attn_stats_every). callback(step_dict) runs after "
        "every step; returning False stops the run after a save. Returns {'dir', 'step', "
        "'finished', 'skipped_steps'}.");
}

}  // namespace difftx::python
