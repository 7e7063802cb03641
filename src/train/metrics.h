#pragma once
// metrics.jsonl in a model directory: one JSON object per logged training step
// {"step", "loss", "lr", "grad_norm", "tokens_per_s"} and per evaluation {"step", "val_loss"}.
// Each line is written and flushed whole; on resume, lines from steps after the checkpoint
// (logged by the run that crashed) are dropped so the file tells one consistent history.
#include <cstdint>
#include <cstdio>
#include <string>

namespace difftx {

class MetricsLog {
 public:
  // resume_step >= 0: keep only lines with step <= resume_step; -1: start a new file.
  MetricsLog(const std::string& model_dir, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const std::string& json_line);

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

}  // namespace difftx
