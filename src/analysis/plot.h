#pragma once
// Loss curves of training runs as a PNG or SVG: read each run directory's metrics.jsonl
// (plot_metrics.cpp) and draw the training loss (thin line, smoothed by a centred moving
// average with the raw values faded behind it) and the validation loss (thicker line with
// markers), one colour per run, with axes, ticks, grid, legend and title, through cairo with
// anti-aliased DejaVu Sans text (analysis/drawing.h).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analysis/drawing.h"
#include "analysis/plot_axes.h"

namespace difftx {

struct MetricPoint {
  double step = 0;
  double value = 0;
};

// The loss history of one run, each series sorted by step.
struct RunMetrics {
  std::string name;                // the run directory's base name
  std::vector<MetricPoint> train;  // "loss" of training-step lines
  std::vector<MetricPoint> val;    // "val_loss" of evaluation lines
};

// Parses metrics.jsonl text: one JSON object per line; blank lines are skipped, keys other than
// step/loss/val_loss are ignored, a null or non-finite loss (a skipped step) is dropped, and so
// is an object with neither loss nor val_loss. A line that is not a JSON object, or that has a
// loss without a numeric "step", or a loss that is neither a number nor null, throws Error
// naming `source` and the line number.
RunMetrics parse_metrics(const std::string& text, const std::string& source);

// Reads RUN_DIR/metrics.jsonl; the run's name is the directory's base name. Throws Error when
// the directory or its metrics.jsonl is missing, or on a malformed line.
RunMetrics read_metrics(const std::string& run_dir);

enum class PlotMetric { kLoss, kValLoss, kBoth };
// "loss", "val_loss" or "both"; anything else throws Error.
PlotMetric parse_plot_metric(const std::string& name);

struct PlotOptions {
  std::string title;                // empty: a title naming the metric
  PlotMetric metric = PlotMetric::kBoth;
  std::optional<int> smooth;        // moving-average window in logged points; 0 or 1: none;
                                    // unset: automatic (auto_smooth_window)
  bool log_x = false;               // logarithmic step axis (points at step <= 0 are dropped)
  int width = 1000, height = 600;   // pixels
  // For plots of other series than losses over steps (the experiment reports' figures):
  std::string x_title, y_title;     // empty: "step" / the metric's name
  std::string val_legend_suffix = " val";  // appended to a run's name for its val series
};

// The plot's file bytes in the chosen format (width x height pixels, or points for SVG).
// Throws Error when no run has a data point for the chosen metric.
std::vector<uint8_t> plot_loss_curves(const std::vector<RunMetrics>& runs,
                                      const PlotOptions& options,
                                      ImageFormat format = ImageFormat::kPng);
// The same plot as RGB pixels (what the PNG holds).
Image render_loss_curves(const std::vector<RunMetrics>& runs, const PlotOptions& options);

// Helpers, exposed for tests.
// The colour of the i-th run (a ten-colour palette, repeated).
std::array<uint8_t, 3> run_colour(size_t i);
// Centred moving average over `window` points, narrowing symmetrically at both ends so the
// first and last values are kept; window <= 1 returns the values unchanged.
std::vector<double> moving_average(const std::vector<double>& values, int window);
// The automatic window for n training points: about n / 30, at least 1.
int auto_smooth_window(size_t n);

}  // namespace difftx
