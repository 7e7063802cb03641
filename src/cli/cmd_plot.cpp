#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analysis/plot.h"
#include "cli/commands.h"
#include "core/files.h"

namespace difftx::cli {

Runner add_plot(CLI::App& app) {
  struct Opts {
    std::vector<std::string> runs;
    std::string out, title, metric = "both";
    int smooth = 0;
    bool log_x = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("RUN_DIR", o->runs, "model directories holding a metrics.jsonl (one curve each)")
      ->required();
  app.add_option("--out", o->out,
                 "output image: PNG, or SVG when the name ends in .svg (e.g. loss.svg)")
      ->required();
  app.add_option("--title", o->title, "title above the plot (default: names the metric)");
  app.add_option("--metric", o->metric, "what to draw: loss, val_loss or both")
      ->check(CLI::IsMember({"loss", "val_loss", "both"}))
      ->capture_default_str();
  CLI::Option* smooth =
      app.add_option("--smooth", o->smooth,
                     "moving-average window for the training loss, in logged points "
                     "(0 or 1: none; default: about a thirtieth of the points)")
          ->check(CLI::Range(0, 1000000));
  app.add_flag("--log-x", o->log_x, "logarithmic step axis");
  return [o, smooth]() {
    std::vector<RunMetrics> runs;
    for (const auto& dir : o->runs) runs.push_back(read_metrics(dir));
    // Runs whose directories share a base name (a/diff, b/diff) are labelled by their paths.
    for (size_t i = 0; i < runs.size(); ++i)
      for (size_t j = 0; j < runs.size(); ++j)
        if (i != j && o->runs[i] != o->runs[j] && runs[i].name == runs[j].name) {
          std::string path = o->runs[i];
          while (path.size() > 1 && path.back() == '/') path.pop_back();
          runs[i].name = path;
          break;
        }
    PlotOptions opts;
    opts.title = o->title;
    opts.metric = parse_plot_metric(o->metric);
    if (smooth->count() > 0) opts.smooth = o->smooth;
    opts.log_x = o->log_x;
    const std::vector<uint8_t> image = plot_loss_curves(runs, opts, image_format_for_path(o->out));
    write_file_atomic(o->out, image.data(), image.size());
    std::printf("wrote %s: %zu run%s\n", o->out.c_str(), runs.size(), runs.size() == 1 ? "" : "s");
    return 0;
  };
}

}  // namespace difftx::cli
