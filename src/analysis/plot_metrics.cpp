// Reading metrics.jsonl for difftx plot, kept apart from the drawing so that the training
// module's own reader can replace it.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/plot.h"
#include "core/error.h"
#include "core/files.h"

namespace difftx {

namespace {

std::string snippet(const std::string& line) {
  return line.size() <= 60 ? line : line.substr(0, 57) + "...";
}

// Reads a loss-like key into out; false when it is absent, null or not finite (a skipped step).
bool read_value(const nlohmann::json& j, const char* key, double& out, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_number()) throw Error(where + ": \"" + key + "\" is not a number");
  out = it->get<double>();
  return std::isfinite(out);  // NaN or infinite values (skipped steps) are dropped
}

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

RunMetrics parse_metrics(const std::string& text, const std::string& source) {
  RunMetrics run;
  std::istringstream in(text);
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + " line " + std::to_string(line_no);
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error(where + ": not valid JSON: " + snippet(line));
    if (!j.is_object()) throw Error(where + ": not a JSON object: " + snippet(line));
    double loss = 0, val_loss = 0;
    const bool has_loss = read_value(j, "loss", loss, where);
    const bool has_val = read_value(j, "val_loss", val_loss, where);
    const bool mentions_loss = j.contains("loss") || j.contains("val_loss");
    if (!mentions_loss) continue;  // some other kind of record
    const auto step = j.find("step");
    if (step == j.end() || !step->is_number() || !std::isfinite(step->get<double>()))
      throw Error(where + ": missing or non-numeric \"step\"");
    const double s = step->get<double>();
    if (has_loss) run.train.push_back({s, loss});
    if (has_val) run.val.push_back({s, val_loss});
  }
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
