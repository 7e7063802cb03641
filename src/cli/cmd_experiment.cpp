// difftx experiment list|show|run: the experiment files built into difftx (experiments/*.json)
// or a user's own, run as resumable training runs with a report (src/experiment/).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/stop_signals.h"
#include "core/error.h"
#include "core/files.h"
#include "experiment/report.h"
#include "experiment/runner.h"
#include "train/dataset.h"

namespace difftx::cli {
namespace {
namespace fs = std::filesystem;

// NAME of a built-in experiment, or the path of an experiment file -> (text, where).
std::pair<std::string, std::string> experiment_text(const std::string& name) {
  for (const auto& [n, text] : builtin_experiments())
    if (n == name) return {text, "experiments/" + n + ".json (built in)"};
  std::error_code ec;
  if (fs::is_regular_file(name, ec)) return {read_file_text(name), name};
  std::string all;
  for (const auto& [n, text] : builtin_experiments()) all += (all.empty() ? "" : ", ") + n;
  throw Error("no experiment \"" + name + "\" (built in: " + all + "; or give an experiment file)");
}

// "${cache}" in data paths: $DIFFTX_CACHE, else ./cache (where scripts/fetch-data.sh puts it).
std::string data_cache() {
  const char* env = std::getenv("DIFFTX_CACHE");
  return env && *env ? env : (fs::current_path() / "cache").string();
}
}  // namespace

Runner add_experiment(CLI::App& app) {
  struct Opts {
    std::string name, out, cache_dir;
    bool quick = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  app.require_subcommand(1);
  CLI::App* list = app.add_subcommand("list", "List the built-in experiments");
  CLI::App* show = app.add_subcommand("show", "Print an experiment file (to copy and edit)");
  show->add_option("name", o->name, "built-in experiment name")->required();
  CLI::App* run = app.add_subcommand(
      "run", "Run an experiment (resumes an unfinished one in --out) and write its report");
  run->add_option("name", o->name, "built-in experiment name, or an experiment file")->required();
  run->add_option("--out", o->out, "output directory: report.md, results.json, figures/, runs/")
      ->required();
  run->add_flag("--quick", o->quick, "the same pipeline on tiny sizes (under a minute)");
  run->add_option("--cache-dir", o->cache_dir, "token cache folder (default ~/.cache/difftx)");
  add_threads(*run, o->threads);
  run->footer(
      "Data paths in the file may use ${cache}: $DIFFTX_CACHE if set, else ./cache (run "
      "scripts/fetch-data.sh first). Interrupting (SIGINT, SIGTERM) saves the current run; the "
      "same command resumes.");
  return [o, list, show, run]() {
    if (list->parsed()) {
      for (const auto& [name, text] : builtin_experiments()) {
        const ExperimentSpec s = parse_experiment(text, name, false, "${cache}");
        std::printf("%-12s %s (%zu arms x %zu rates x %zu seeds, %lld steps)\n", name.c_str(),
                    s.title.c_str(), s.arms.size(), s.lrs.size(), s.seeds.size(),
                    static_cast<long long>(s.train.steps));
      }
      return 0;
    }
    const auto [text, where] = experiment_text(o->name);
    if (show->parsed()) {
      std::fputs(text.c_str(), stdout);
      return 0;
    }
    (void)run;
    const ExperimentSpec spec = parse_experiment(text, where, o->quick, data_cache());
    apply_threads(o->threads);
    ExperimentOptions eo;
    eo.out_dir = o->out;
    eo.cache_dir = o->cache_dir.empty() ? default_cache_dir() : o->cache_dir;
    eo.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    StopSignals signals;
    eo.stop = signals.flag();
    const ExperimentResults res = run_experiment(spec, eo);
    std::string command = "difftx experiment run " + o->name + (o->quick ? " --quick" : "") +
                          " --out " + o->out;
    write_experiment_report(res, o->out, command);
    if (!res.complete) {
      std::fprintf(stderr, "interrupted: the current run is saved; run the same command to resume\n");
      return 128 + (signals.signal() ? signals.signal() : SIGINT);
    }
    std::printf("wrote %s/report.md and results.json (%zu runs)\n", o->out.c_str(), res.runs.size());
    return 0;
  };
}

}  // namespace difftx::cli
