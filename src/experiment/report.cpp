#include "experiment/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "analysis/plot.h"
#include "core/error.h"
#include "core/files.h"
#include "experiment/commit.inc.h"

namespace difftx {
namespace fs = std::filesystem;

Spread spread_of(const std::vector<double>& v) {
  Spread s;
  s.n = v.size();
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  // Two-sided 97.5% quantiles of Student's t for 1..10 degrees of freedom, then the normal's.
  static const double kT[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228};
  const size_t df = v.size() - 1;
  s.half95 = (df <= 10 ? kT[df - 1] : 1.96) * s.sd / std::sqrt(static_cast<double>(v.size()));
  return s;
}

namespace {
std::string fmt(double x, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}
std::string with_sign(double x, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.*f", digits, x);
  return buf;
}
std::string pm(const Spread& s, int digits = 4) {
  return s.n > 1 ? fmt(s.mean, digits) + " ± " + fmt(s.sd, digits) : fmt(s.mean, digits);
}
std::string rate(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0e", lr);
  return buf;
}
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

using Metric = double RunMeasures::*;
struct MetricInfo {
  const char* name;
  Metric field;
};
const MetricInfo kMetrics[] = {{"val bits/byte", &RunMeasures::val_bpb},
                               {"val loss (nats/token)", &RunMeasures::val_loss},
                               {"AR-Hit loss", &RunMeasures::ar_hit_loss},
                               {"other-token loss", &RunMeasures::other_loss},
                               {"train loss (last 10%)", &RunMeasures::train_loss}};

std::vector<const RunMeasures*> runs_of(const ExperimentResults& r, const std::string& arm, double lr) {
  std::vector<const RunMeasures*> out;
  for (const RunMeasures& m : r.runs)
    if (m.arm == arm && m.lr == lr) out.push_back(&m);
  return out;
}
std::vector<double> values(const std::vector<const RunMeasures*>& runs, Metric f) {
  std::vector<double> v;
  for (const RunMeasures* m : runs) v.push_back(m->*f);
  return v;
}
// The rate with the lowest mean validation loss over seeds (the selection rule, fixed in
// advance; ties: the smaller rate).
double best_rate(const ExperimentResults& r, const std::string& arm) {
  double best = 0, best_loss = INFINITY;
  for (double lr : r.spec.lrs) {
    const auto runs = runs_of(r, arm, lr);
    if (runs.empty()) continue;
    const double loss = spread_of(values(runs, &RunMeasures::val_loss)).mean;
    if (loss < best_loss) best = lr, best_loss = loss;
  }
  return best;
}
// The verdict on a paired difference: `lower` when its 95% interval lies below 0, `higher`
// when above, else inconclusive.
// The 95% interval of a spread as "[lo, hi]", "-" with one value.
std::string interval_of(const Spread& d, int digits = 4) {
  return d.n > 1 ? "[" + fmt(d.mean - d.half95, digits) + ", " + fmt(d.mean + d.half95, digits) + "]" : "-";
}
// f(arm's run) - f(baseline's run), for every seed both have.
template <typename F>
std::vector<double> paired_differences(const std::vector<const RunMeasures*>& runs,
                                       const std::vector<const RunMeasures*>& base, const F& f) {
  std::vector<double> diff;
  for (const RunMeasures* m : runs)
    for (const RunMeasures* o : base)
      if (m->seed == o->seed) diff.push_back(f(*m) - f(*o));
  return diff;
}
const char* verdict_of(const Spread& d, const char* lower, const char* higher) {
  return d.n < 2 ? "one seed: no interval"
         : d.mean + d.half95 < 0 ? lower
         : d.mean - d.half95 > 0 ? higher
                                 : "inconclusive";
}
// Fig. 8: validation loss with quantised attention logits, per arm and width, and the
// loss increase of each arm against the baseline's, paired by seed.
double quantised_loss(const RunMeasures& m, int bits) {
  for (const RunMeasures::Quantised& q : m.quant)
    if (q.bits == bits) return q.loss;
  throw Error(m.dir + ": no loss measured at " + std::to_string(bits) + " bits; delete its measures.json to measure again");
}
void write_quantisation(std::ostringstream& md, const ExperimentResults& r,
                        const std::map<std::string, double>& best, const std::string& out_dir) {
  const ExperimentSpec& s = r.spec;
  md << "\n## Attention logits quantised (the paper's Fig. 8; each arm at its best rate)\n\n"
     << "Validation loss (nats per token) over the first "
     << (s.quant_tokens > 0 ? s.quant_tokens : s.eval_tokens)
     << " validation tokens with every attention map's logits (q.k / sqrt(d), one sequence, "
        "head and map at a time) rounded to 2^(bits-1) - 1 levels of that map's largest "
        "|logit| (dynamic absmax, post-training, reference kernel), mean ± sd over seeds; in "
        "brackets the increase over the same model's exact loss.\n\n| arm | exact |";
  for (int b : s.quant_bits) md << " " << b << " bits |";
  md << "\n|---|---|";
  for (size_t i = 0; i < s.quant_bits.size(); ++i) md << "---|";
  md << "\n";
  for (const ExperimentArm& a : s.arms) {
    const auto runs = runs_of(r, a.name, best.at(a.name));
    md << "| " << a.name << " | " << pm(spread_of(values(runs, &RunMeasures::quant_exact_loss))) << " |";
    for (int b : s.quant_bits) {
      std::vector<double> loss, rise;
      for (const RunMeasures* m : runs) {
        loss.push_back(quantised_loss(*m, b));
        rise.push_back(quantised_loss(*m, b) - m->quant_exact_loss);
      }
      md << " " << pm(spread_of(loss)) << " (" << with_sign(spread_of(rise).mean) << ") |";
    }
    md << "\n";
  }
  md << "\nThe increase of each arm minus the baseline's (paired by seed; negative: the arm "
        "degrades less):\n\n| arm | bits | difference of increases | 95% interval | verdict |\n"
        "|---|---|---|---|---|\n";
  const auto base = runs_of(r, s.baseline, best.at(s.baseline));
  for (const ExperimentArm& a : s.arms) {
    if (a.name == s.baseline) continue;
    for (int b : s.quant_bits) {
      const auto diff = paired_differences(runs_of(r, a.name, best.at(a.name)), base,
          [b](const RunMeasures& m) { return quantised_loss(m, b) - m.quant_exact_loss; });
      if (diff.empty()) continue;
      const Spread d = spread_of(diff);
      md << "| " << a.name << " | " << b << " | " << fmt(d.mean) << " | " << interval_of(d) << " | " << verdict_of(d, "degrades less", "degrades more") << " |\n";
    }
  }

  // The figure: each arm's loss increase against the width, the mean over seeds.
  std::vector<RunMetrics> curves;
  for (const ExperimentArm& a : s.arms) {
    RunMetrics rm;
    rm.name = a.name;
    const auto runs = runs_of(r, a.name, best.at(a.name));
    for (int b : s.quant_bits) {
      std::vector<double> rise;
      for (const RunMeasures* m : runs) rise.push_back(quantised_loss(*m, b) - m->quant_exact_loss);
      if (!rise.empty()) rm.val.push_back({static_cast<double>(b), spread_of(rise).mean});
    }
    std::sort(rm.val.begin(), rm.val.end(),
              [](const MetricPoint& x, const MetricPoint& y) { return x.step < y.step; });
    curves.push_back(std::move(rm));
  }
  PlotOptions po;
  po.title = s.name + ": loss increase with quantised attention logits (mean over seeds)";
  po.metric = PlotMetric::kValLoss;
  po.x_title = "bits of the attention logits";
  po.y_title = "validation loss increase (nats/token)";
  po.val_legend_suffix = "";
  const auto png = plot_loss_curves(curves, po);
  fs::create_directories(fs::path(out_dir) / "figures");
  write_file_atomic((fs::path(out_dir) / "figures" / "quantised.png").string(), png.data(), png.size());
  md << "\n![loss increase against bits](figures/quantised.png)\n";
}
// The language-model tables: every metric per arm, the paired differences against the
// baseline, and the activation outliers.
void write_language_model_results(std::ostringstream& md, const ExperimentResults& r,
                                  const std::map<std::string, double>& best) {
  const ExperimentSpec& s = r.spec;
  md << "\n## Results (each arm at its best learning rate; mean ± sd over seeds)\n\n| arm | lr | seeds |";
  for (const MetricInfo& mi : kMetrics) md << " " << mi.name << " |";
  md << " tokens/s |\n|---|---|---|";
  for (size_t i = 0; i <= std::size(kMetrics); ++i) md << "---|";
  md << "\n";
  for (const ExperimentArm& a : s.arms) {
    const auto runs = runs_of(r, a.name, best.at(a.name));
    md << "| " << a.name << " | " << rate(best.at(a.name)) << " | " << runs.size() << " |";
    for (const MetricInfo& mi : kMetrics) md << " " << pm(spread_of(values(runs, mi.field))) << " |";
    md << " " << fmt(spread_of(values(runs, &RunMeasures::train_tokens_per_s)).mean, 0) << " |\n";
  }

  md << "\n## Against the baseline `" << s.baseline << "` (paired by seed)\n\n"
     << "| arm | metric | mean difference | 95% interval | relative | verdict |\n|---|---|---|---|---|---|\n";
  const auto base_runs = runs_of(r, s.baseline, best.at(s.baseline));
  for (const ExperimentArm& a : s.arms) {
    if (a.name == s.baseline) continue;
    const auto runs = runs_of(r, a.name, best.at(a.name));
    for (const MetricInfo& mi : kMetrics) {
      std::vector<double> diff, base;
      for (const RunMeasures* m : runs)
        for (const RunMeasures* b : base_runs)
          if (m->seed == b->seed) {
            diff.push_back(m->*mi.field - b->*mi.field);
            base.push_back(b->*mi.field);
          }
      if (diff.empty()) continue;
      const Spread d = spread_of(diff), b = spread_of(base);
      const char* verdict = verdict_of(d, "better (lower)", "worse (higher)");
      md << "| " << a.name << " | " << mi.name << " | " << fmt(d.mean) << " | "
         << interval_of(d) << " | " << fmt(100.0 * d.mean / b.mean, 2) << "% | " << verdict << " |\n";
    }
  }

  if (s.outlier_windows > 0) {
    md << "\n## Activation outliers (the paper's Table 5; each arm at its best rate)\n\n"
       << "Over " << s.outlier_windows << " validation windows of " << s.train.seq
       << " tokens: the largest |attention logit| (q.k / sqrt(d) over every causal pair, head "
          "and map) and |hidden state| (the stream leaving every layer), and the mean of the "
          "windows' medians.\n\n"
       << "| arm | logit top-1 | logit median | top-1 / median | hidden top-1 | hidden median | top-1 / median |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const ExperimentArm& a : s.arms) {
      const auto runs = runs_of(r, a.name, best.at(a.name));
      const Spread lt = spread_of(values(runs, &RunMeasures::logit_top1));
      const Spread lm = spread_of(values(runs, &RunMeasures::logit_median));
      const Spread ht = spread_of(values(runs, &RunMeasures::hidden_top1));
      const Spread hm = spread_of(values(runs, &RunMeasures::hidden_median));
      md << "| " << a.name << " | " << pm(lt, 2) << " | " << pm(lm, 3) << " | "
         << fmt(lt.mean / lm.mean, 1) << " | " << pm(ht, 2) << " | " << pm(hm, 3) << " | "
         << fmt(ht.mean / hm.mean, 1) << " |\n";
    }
    // Table 5's layout: the k-th largest over all windows, mean over seeds.
    md << "\nThe k-th largest magnitude over all windows (mean over seeds), Table 5's columns:\n\n"
       << "| arm | activation | top-1 | top-2 | top-3 | top-10 | top-100 | median |\n"
       << "|---|---|---|---|---|---|---|---|\n";
    for (const ExperimentArm& a : s.arms) {
      const auto runs = runs_of(r, a.name, best.at(a.name));
      for (const bool hidden : {false, true}) {
        md << "| " << a.name << " | " << (hidden ? "hidden states" : "attention logits") << " |";
        for (size_t k = 0; k < 5; ++k) {
          std::vector<double> v;
          for (const RunMeasures* m : runs) {
            const auto& top = hidden ? m->hidden_top : m->logit_top;
            if (k < top.size()) v.push_back(top[k]);
          }
          md << " " << (v.size() == runs.size() && !v.empty() ? fmt(spread_of(v).mean, 2) : "-") << " |";
        }
        md << " " << fmt(spread_of(values(runs, hidden ? &RunMeasures::hidden_median : &RunMeasures::logit_median)).mean, 3)
           << " |\n";
      }
    }
  }
}

// needle with noise_per_cell (Table 3): the answer position's attention on the queried needle
// and the noise, per depth bin, and paired against the baseline.
template <typename Column>
void write_needle_attention(std::ostringstream& md, const ExperimentResults& r,
                            const std::map<std::string, double>& best,
                            const std::vector<Column>& by_depth) {
  const ExperimentSpec& s = r.spec;
  // The mean over the measured examples of one run's cells that pass `keep`.
  const auto mean_of = [](const RunMeasures& m, const auto& keep, bool noise) {
    double sum = 0;
    int64_t n = 0;
    for (const RunMeasures::NeedleCell& c : m.needle)
      if (keep(c) && c.span_examples > 0) {
        sum += (noise ? c.span_noise : c.span_attention) * static_cast<double>(c.span_examples);
        n += c.span_examples;
      }
    return n > 0 ? sum / static_cast<double>(n) : 0.0;
  };
  const auto all = [](const RunMeasures::NeedleCell&) { return true; };
  md << "\n## Attention on the queried needle and attention noise (the paper's Table 3)\n\n"
     << "On the first " << s.needle.noise_per_cell << " test examples of every (N, depth) cell: "
        "the attention that the answer position (the prompt's last token, which predicts the "
        "first digit) gives the tokens of the queried needle, and the noise on every other "
        "context token, each as a share of that row's total |a|, averaged over all layers and "
        "heads of the effective maps (for DIFF, A1 - lambda A2). A negative weight counts "
        "against the needle and, by its magnitude, as noise; so attention + noise = 1 for a "
        "softmax map, and less when a differential map's negative weights fall on the needle. "
        "Attention / noise, mean over seeds:\n\n| arm | all |";
  for (const Column& c : by_depth) md << " " << c.name << " |";
  md << "\n|---|---|";
  for (size_t i = 0; i < by_depth.size(); ++i) md << "---|";
  md << "\n";
  for (const ExperimentArm& a : s.arms) {
    const auto runs = runs_of(r, a.name, best.at(a.name));
    const auto cell = [&](const auto& keep) {
      std::vector<double> at, no;
      for (const RunMeasures* m : runs) at.push_back(mean_of(*m, keep, false)), no.push_back(mean_of(*m, keep, true));
      return fmt(spread_of(at).mean, 3) + " / " + fmt(spread_of(no).mean, 3);
    };
    md << "| " << a.name << " | " << cell(all) << " |";
    for (const Column& c : by_depth) md << " " << cell(c.keep) << " |";
    md << "\n";
  }
  md << "\nAgainst the baseline `" << s.baseline << "` over all cells, paired by seed:\n\n"
     << "| arm | measure | mean difference | 95% interval | verdict |\n|---|---|---|---|---|\n";
  const auto base = runs_of(r, s.baseline, best.at(s.baseline));
  for (const ExperimentArm& a : s.arms) {
    if (a.name == s.baseline) continue;
    for (const bool noise : {false, true}) {
      const auto diff = paired_differences(runs_of(r, a.name, best.at(a.name)), base,
          [&](const RunMeasures& m) { return mean_of(m, all, noise); });
      if (diff.empty()) continue;
      const Spread d = spread_of(diff);
      md << "| " << a.name << " | " << (noise ? "noise" : "attention on the needle") << " | "
         << fmt(d.mean, 3) << " | " << interval_of(d, 3) << " | " << (noise ? verdict_of(d, "less noise", "more noise") : verdict_of(d, "less attention", "more attention"))
         << " |\n";
    }
  }
}

// needle: the task's protocol, and accuracy by number of needles and by depth.
void write_needle_protocol(std::ostringstream& md, const ExperimentSpec& s) {
  const NeedleSpec& n = s.needle;
  md << "- Task (the paper's section 3.4): a haystack of " << n.context_bytes << " bytes cut "
     << "from `" << n.filler << "` holds N needles \"The magic number of CITY is NUMBER.\" "
        "(N distinct cities, four-digit numbers); the question asks for one city's number "
        "(R = 1; the paper asks for R = 2 of them when N >= 2). The queried needle sits at a "
        "depth drawn within one of " << n.depth_bins << " equal bins of the haystack, the "
        "others anywhere. Tokenizer `" << s.tokenizer << "`.\n"
     << "- Data (seed " << n.data_seed << ", the same for every arm and seed, under `data/`): "
     << n.train_examples << " training and " << n.val_examples << " validation examples with N "
        "drawn from {";
  for (size_t i = 0; i < n.needles.size(); ++i) md << (i ? ", " : "") << n.needles[i];
  md << "} and the depth at random; " << n.test_per_cell << " test examples per (N, depth bin). "
        "Training haystacks come from the first 90% of the filler, validation and test ones "
        "from the last 10%.\n"
     << "- Training: decoder-only question answering (document, \"\\nAnswer: \", the number; the "
        "loss only on the answer), from scratch; no early stopping, the weights with the lowest "
        "validation answer loss are kept. Scored by exact match of the greedy answer.\n";
}

void write_needle_results(std::ostringstream& md, const ExperimentResults& r,
                          const std::map<std::string, double>& best) {
  const ExperimentSpec& s = r.spec;
  // Accuracy of one run over the cells that pass `keep`.
  const auto accuracy = [](const RunMeasures& m, const auto& keep) {
    int64_t correct = 0, total = 0;
    for (const RunMeasures::NeedleCell& c : m.needle)
      if (keep(c)) correct += c.correct, total += c.total;
    return total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
  };
  struct Column {
    std::string name;
    std::function<bool(const RunMeasures::NeedleCell&)> keep;
  };
  std::vector<Column> by_n{{"all", [](const auto&) { return true; }}};
  for (int N : s.needle.needles)
    by_n.push_back({"N=" + std::to_string(N), [N](const auto& c) { return c.needles == N; }});
  std::vector<Column> by_depth;
  for (int b = 0; b < s.needle.depth_bins; ++b)
    by_depth.push_back({fmt(100.0 * b / s.needle.depth_bins, 0) + "-" +
                            fmt(100.0 * (b + 1) / s.needle.depth_bins, 0) + "%",
                        [b](const auto& c) { return c.depth_bin == b; }});
  const auto table = [&](const std::string& title, const std::vector<Column>& cols) {
    md << "\n## " << title << "\n\n| arm | lr |";
    for (const Column& c : cols) md << " " << c.name << " |";
    md << "\n|---|---|";
    for (size_t i = 0; i < cols.size(); ++i) md << "---|";
    md << "\n";
    for (const ExperimentArm& a : s.arms) {
      const auto runs = runs_of(r, a.name, best.at(a.name));
      md << "| " << a.name << " | " << rate(best.at(a.name)) << " |";
      for (const Column& c : cols) {
        std::vector<double> v;
        for (const RunMeasures* m : runs) v.push_back(accuracy(*m, c.keep));
        md << " " << pm(spread_of(v), 3) << " |";
      }
      md << "\n";
    }
  };
  table("Accuracy by number of needles (each arm at its best learning rate; mean ± sd over seeds)", by_n);
  table("Accuracy by depth of the queried needle (0%: the start of the haystack, farthest from the question)", by_depth);

  md << "\n## Against the baseline `" << s.baseline << "` (accuracy, paired by seed)\n\n"
     << "| arm | needles | mean difference | 95% interval | verdict |\n|---|---|---|---|---|\n";
  const auto base = runs_of(r, s.baseline, best.at(s.baseline));
  for (const ExperimentArm& a : s.arms) {
    if (a.name == s.baseline) continue;
    for (const Column& c : by_n) {
      const auto diff = paired_differences(runs_of(r, a.name, best.at(a.name)), base,
          [&](const RunMeasures& m) { return accuracy(m, c.keep); });
      if (diff.empty()) continue;
      const Spread d = spread_of(diff);
      md << "| " << a.name << " | " << c.name << " | " << fmt(d.mean, 3) << " | " << interval_of(d, 3) << " | " << verdict_of(d, "worse (lower)", "better (higher)") << " |\n";
    }
  }
  md << "\nSteps to 90% accuracy are not measured (validation scores the answer loss, not "
        "accuracy); the loss curves below show the training.\n";
  if (s.needle.noise_per_cell > 0) write_needle_attention(md, r, best, by_depth);
}

}  // namespace

void write_experiment_report(const ExperimentResults& r, const std::string& out_dir,
                             const std::string& command) {
  const ExperimentSpec& s = r.spec;
  std::ostringstream md;
  md << "# Experiment `" << s.name << "` (version " << s.version << "): " << s.title << "\n\n";
  if (!s.question.empty()) md << s.question << "\n\n";
  if (!r.complete) md << "**Incomplete:** some runs have not finished; run the same command again to resume.\n\n";

  double total_wall = 0;
  for (const RunMeasures& m : r.runs) total_wall += m.wall_s;
  md << "## How it was run\n\n"
     << "- Command: `" << command << "`\n"
     << "- Experiment file: " << s.source << "\n"
     << "- difftx commit " << kDifftxCommit << ", on " << cpu_model() << " ("
     << std::thread::hardware_concurrency() << " hardware threads)\n"
     << "- Wall time: " << fmt(total_wall / 60.0, 1) << " min of training and measuring in all ("
     << r.runs.size() << " runs)\n\n";

  const bool needle = s.kind == ExperimentKind::kNeedle;
  md << "## Protocol (fixed before running)\n\n";
  if (needle) write_needle_protocol(md, s);
  else
    md << "- Data: train `" << s.train_data << "`, validation `" << s.val_data << "`, tokenizer `"
       << s.tokenizer << "`.\n";
  md << "- Budget per run, the same for every arm: " << s.train.steps << " steps of "
     << s.train.batch << (needle ? " examples" : " x " + std::to_string(s.train.seq) + " tokens (" +
                          std::to_string(s.train.steps * s.train.batch * s.train.seq) + " tokens)")
     << ", AdamW, cosine schedule, warm-up " << (s.train.warmup < 0 ? "5%" : std::to_string(s.train.warmup) + " steps")
     << ", weight decay " << s.train.weight_decay << ", gradient clip " << s.train.grad_clip << ".\n"
     << "- Learning rates:";
  for (double lr : s.lrs) md << " " << rate(lr);
  md << " for every arm; each arm is reported at the rate with its lowest mean validation loss.\n"
     << "- Seeds:";
  for (uint64_t seed : s.seeds) md << " " << seed;
  md << ". A seed fixes the data order (the same windows in the same order for every arm) and "
        "the initial weights, drawn per tensor from (seed, tensor name): every tensor two arms "
        "share starts identical (paired initialisation).\n";
  if (!needle)
    md << "- Measured at the end on the first " << (s.eval_tokens > 0 ? std::to_string(s.eval_tokens) : "all")
     << " validation tokens in consecutive windows of " << s.train.seq << ". AR-Hit: a predicted token "
        "whose bigram (previous token, token) already occurred earlier in the same window (the "
        "paper's Table 6, after Zoology); its loss and the loss of the other tokens are reported apart.\n";
  md << "- Differences are paired by seed (arm minus `" << s.baseline << "`, same seed), with a "
        "95% t-interval over seeds. Verdict: *better* / *worse* when the interval excludes 0, else "
        "*inconclusive*.\n\n";

  md << "## Arms\n\n| arm | model_type | preset | overrides | parameters | without embedding |\n|---|---|---|---|---|---|\n";
  for (const ExperimentArm& a : s.arms) {
    const auto runs = runs_of(r, a.name, s.lrs.front());
    const Config c = arm_config(a, 257, s.source);
    md << "| " << a.name << " | " << model_type_name(c.model_type) << " | " << a.preset << " | `"
       << (a.config.empty() ? "-" : a.config.dump()) << "` | "
       << (runs.empty() ? std::string("-") : std::to_string(runs[0]->params.total)) << " | "
       << (runs.empty() ? std::string("-") : std::to_string(runs[0]->params.non_embedding())) << " |\n";
  }

  std::map<std::string, double> best;
  for (const ExperimentArm& a : s.arms) best[a.name] = best_rate(r, a.name);
  if (needle) write_needle_results(md, r, best);
  else write_language_model_results(md, r, best);
  if (!s.quant_bits.empty()) write_quantisation(md, r, best, out_dir);

  if (s.lrs.size() > 1) {
    md << "\n## Learning-rate sweep (mean validation loss over seeds)\n\n| arm |";
    for (double lr : s.lrs) md << " " << rate(lr) << " |";
    md << "\n|---|";
    for (size_t i = 0; i < s.lrs.size(); ++i) md << "---|";
    md << "\n";
    for (const ExperimentArm& a : s.arms) {
      md << "| " << a.name << " |";
      for (double lr : s.lrs) md << " " << pm(spread_of(values(runs_of(r, a.name, lr), &RunMeasures::val_loss))) << " |";
      md << "\n";
    }
  }

  if (!s.paper.empty()) {
    md << "\n## The paper's figures beside ours\n\n| claim | paper | where |\n|---|---|---|\n";
    for (const PaperFigure& p : s.paper) md << "| " << p.claim << " | " << p.paper << " | " << p.where << " |\n";
    md << "\nOurs are in the tables above; the paper's models are 830M parameters and up, "
          "trained on billions of tokens, so a difference in sign or size at this scale is a "
          "result about this scale.\n";
  }

  // Loss curves of every arm at its best rate, every seed.
  std::vector<RunMetrics> curves;
  for (const ExperimentArm& a : s.arms)
    for (const RunMeasures* m : runs_of(r, a.name, best[a.name])) {
      try {
        RunMetrics rm = read_metrics((fs::path(out_dir) / m->dir).string());
        rm.name = a.name + " s" + std::to_string(m->seed);
        curves.push_back(std::move(rm));
      } catch (const Error&) {  // a run directory removed by hand: no curve
      }
    }
  if (!curves.empty()) {
    fs::create_directories(fs::path(out_dir) / "figures");
    PlotOptions po;
    po.title = s.name + ": loss at each arm's best learning rate";
    const auto png = plot_loss_curves(curves, po);
    write_file_atomic((fs::path(out_dir) / "figures" / "loss.png").string(), png.data(), png.size());
    md << "\n## Figures\n\n![loss curves](figures/loss.png)\n";
  }
  md << "\nEvery run, seed and metric: `results.json`; each run's directory (under `runs/`) is "
        "a model directory with its metrics.jsonl.\n";
  write_file_atomic((fs::path(out_dir) / "report.md").string(), md.str());
}

}  // namespace difftx
