#pragma once
// `difftx evaluate`: one model (and with compare, a second one beside it) on one task, with
//   metric     the task's own (lm: loss, perplexity, bits per byte; classify: accuracy,
//              macro-F1, ...; summarize: ROUGE-1/2/L with the lead baseline)
//   attention  attention_quality.h on the first attn_examples inputs (up to attn_seq tokens)
//   efficiency examples/s, tokens/s, ms per example of the task evaluation, and the peak
//              resident memory while this model was evaluated
// and, with compare, "relative": the metric's relative difference in percent (for the lm loss,
// a reduction counts as positive), the efficiency differences in percent and the ratios of the
// attention measures (model / compare).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tasks/summarize.h"

namespace difftx {

struct EvaluateRequest {
  std::string model, compare;  // compare "" = one model
  std::string task;            // "lm" | "classify" | "summarize"
  std::string data;            // lm: text (file, folder, glob); tasks: JSON lines
  std::string cache_dir;       // lm token caches
  int64_t batch = 8;
  int64_t seq = 256;           // lm windows
  int64_t max_tokens = 0;      // lm: score at most N tokens (0: all)
  SummarizeOptions decoding;   // summarize
  int64_t lead = 10;           // summarize's lead baseline
  int64_t attn_examples = 8, attn_seq = 128;
  std::string span;            // "START:END" of key tokens, or ""
};

nlohmann::json evaluate_models(const EvaluateRequest& r);
// The same as a markdown report (tables of metric, attention and efficiency).
std::string evaluate_markdown(const nlohmann::json& result);

}  // namespace difftx
