#pragma once
// `difftx summarize`: decoder-only summarization. A training sequence is
//   document tokens (the first max_document_tokens) + separator + summary tokens (the first
//   max_summary_tokens) + end (the tokenizer's end-of-text id, or "\n" without one)
// and the loss counts only the predictions of the summary and its end (a loss mask: targets
// -1 elsewhere). A summarizer directory is a model directory plus summarizer.json
// {"format": "difftx-summarizer", "separator", "max_document_tokens", "max_summary_tokens"};
// decoding goes through src/infer (KV cache; greedy, or sampled with a temperature), and
// evaluation scores ROUGE-1/2/L with the lead-k baseline beside it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "infer/sampling.h"
#include "io/tokenizer.h"
#include "model/params.h"
#include "tasks/task_data.h"
#include "tasks/task_run.h"

namespace difftx {

struct Summarizer {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::string separator = "\nSummary:";
  int64_t max_document_tokens = 384, max_summary_tokens = 48;
  static constexpr const char* kDescriptor = "summarizer.json";
};

// Throws Error naming the directory when it has no summarizer.json.
Summarizer load_summarizer(const std::string& dir);
void save_summarizer(const std::string& dir, const Summarizer& s);

// The prompt of a document: its first max_document_tokens tokens and the separator.
std::vector<int32_t> summary_prompt(const Summarizer& s, const std::string& document);
// A training sequence and its targets (-1 except on the summary and its end).
void summary_example(const Summarizer& s, const SummaryExample& e, std::vector<int32_t>& tokens,
                     std::vector<int32_t>& targets);

struct SummarizeTrainRequest {
  std::string out;
  bool resume = false;
  std::string data, val;
  std::string init_from, preset, config, tokenizer = "byte";
  std::string separator = "\nSummary:";
  int64_t max_document_tokens = 384, max_summary_tokens = 48;
  int64_t val_max = 200;  // validation loss over the first N validation pairs
  TaskTrainOptions opts;
  int64_t resume_steps = 0;
};

TaskRunResult summarize_train(const SummarizeTrainRequest& r, const TaskRunObserver& obs);

struct SummarizeOptions {
  int64_t batch = 8;
  SamplingOptions sampling;  // temperature 0: greedy
  uint64_t seed = 0;
  int64_t max_examples = 0;  // 0: all
};

struct Summaries {
  std::vector<std::string> texts;
  double seconds = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
};
Summaries summarize_all(const Summarizer& s, const std::vector<SummaryExample>& examples,
                        const SummarizeOptions& o);

// {"task": "summarize", "data", "rouge1", "rouge2", "rougeL", "examples", "examples_per_s",
//  "tokens_per_s", "ms_per_example", "lead": {"k", "rouge1", "rouge2", "rougeL"}}
nlohmann::json summarize_eval(const std::string& model, const std::string& data,
                              const SummarizeOptions& o, int64_t lead_k);
// The lead baseline alone.
nlohmann::json lead_eval(const std::string& data, int64_t lead_k, int64_t max_examples);
// One JSON line {"summary"} per document.
std::string summarize_run(const std::string& model, const std::string& data,
                          const SummarizeOptions& o);

}  // namespace difftx
