// The loss curves difftx plot draws, read from metrics.jsonl through the training module's
// reader (the one module that writes and reads that file).
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "analysis/plot.h"
#include "core/error.h"
#include "core/files.h"
#include "train/metrics.h"

namespace difftx {

namespace {

std::string run_name(const std::string& run_dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(run_dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "runs/a/" -> "runs/a"
  std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") {
    std::error_code ec;
    const fs::path abs = fs::weakly_canonical(fs::absolute(run_dir), ec);
    if (!ec && abs.has_filename()) name = abs.filename().string();
  }
  return name.empty() ? run_dir : name;
}

}  // namespace

// The curves of a run, read through the module that writes metrics.jsonl (train/metrics.h):
// step records give the training curve, eval records the validation curve; values that are
// not finite (skipped steps) are left out.
RunMetrics parse_metrics(const std::string& text, const std::string& source) {
  const MetricsHistory h = parse_metrics_jsonl(text, source);
  RunMetrics run;
  for (const StepRecord& r : h.steps)
    if (std::isfinite(r.loss)) run.train.push_back({static_cast<double>(r.step), r.loss});
  for (const EvalRecord& r : h.evals)
    if (std::isfinite(r.val_loss)) run.val.push_back({static_cast<double>(r.step), r.val_loss});
  const auto by_step = [](const MetricPoint& a, const MetricPoint& b) { return a.step < b.step; };
  std::stable_sort(run.train.begin(), run.train.end(), by_step);
  std::stable_sort(run.val.begin(), run.val.end(), by_step);
  return run;
}

RunMetrics read_metrics(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(run_dir, ec)) throw Error("run directory " + run_dir + " does not exist");
  if (!fs::is_directory(run_dir, ec)) throw Error(run_dir + " is not a directory");
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  if (!fs::is_regular_file(path, ec))
    throw Error(run_dir + " has no metrics.jsonl (not a training run directory?)");
  RunMetrics run = parse_metrics(read_file_text(path), path);
  run.name = run_name(run_dir);
  return run;
}

PlotMetric parse_plot_metric(const std::string& name) {
  if (name == "loss") return PlotMetric::kLoss;
  if (name == "val_loss") return PlotMetric::kValLoss;
  if (name == "both") return PlotMetric::kBoth;
  throw Error("unknown metric \"" + name + "\" (expected loss, val_loss or both)");
}

}  // namespace difftx
