#pragma once
// metrics.jsonl in a run directory, written and read only here. One JSON object per line, of
// three kinds, told apart by their keys:
//   step record     {"step", "loss", "lr", "grad_norm", "tokens_per_s", "skipped"}
//   eval record     {"step", "val_loss"}                       (evaluate.h defines val_loss)
//   monitor record  {"step", "attn_sparsity", "attn_focus", "attn_entropy", "attn_mean_abs",
//                    "attn_max", "attn_negative_share", "lambda": [per layer] (differential),
//                    "logit_top1", "logit_median", "hidden_top1", "hidden_median"}
// (A line may carry the keys of more than one kind; it then counts as each of them.)
// A value that is not finite (a skipped step's loss) is written as null and read back as NaN.
// Each line is written and flushed whole; on resume, lines from steps after the checkpoint
// (logged by the run that crashed) are dropped so the file tells one consistent history.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace difftx {

struct StepRecord {
  int64_t step = 0;  // 1-based count of completed steps
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0;
  bool skipped = false;  // non-finite loss or gradient: no update
  double allreduce_s = 0;  // time in the gradient all-reduce (data parallel; not in the file)
};

struct EvalRecord {
  int64_t step = 0;
  double val_loss = 0;
};

// Attention monitoring (analysis' attention_statistics on a fixed window). NaN: not measured.
struct MonitorRecord {
  int64_t step = 0;
  double sparsity = 0, focus = 0, entropy = 0, mean_abs = 0, max = 0, negative_share = 0;
  std::vector<double> lambda;  // one per layer (differential models; empty otherwise)
  double logit_top1 = 0, logit_median = 0, hidden_top1 = 0, hidden_median = 0;
};

struct MetricsHistory {
  std::vector<StepRecord> steps;
  std::vector<EvalRecord> evals;
  std::vector<MonitorRecord> monitors;
};

std::string to_json_line(const StepRecord& r);
std::string to_json_line(const EvalRecord& r);
std::string to_json_line(const MonitorRecord& r);

// Parses metrics.jsonl text in file order. Blank lines and objects of no known kind are
// skipped; a line that is not a JSON object, or a record with a missing or mistyped key,
// throws Error naming `source` and the line number.
MetricsHistory parse_metrics_jsonl(const std::string& text, const std::string& source);
// RUN_DIR/metrics.jsonl; throws Error when it is missing or malformed.
MetricsHistory read_metrics_jsonl(const std::string& run_dir);

class MetricsLog {
 public:
  // resume_step >= 0: keep only lines with step <= resume_step; -1: start a new file.
  MetricsLog(const std::string& run_dir, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const StepRecord& r) { write_line(to_json_line(r)); }
  void write(const EvalRecord& r) { write_line(to_json_line(r)); }
  void write(const MonitorRecord& r) { write_line(to_json_line(r)); }

 private:
  void write_line(const std::string& json_line);
  std::FILE* f_ = nullptr;
  std::string path_;
};

}  // namespace difftx
