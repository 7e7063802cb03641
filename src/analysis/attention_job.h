#pragma once
// `difftx attention`: a model (and optionally a baseline to compare) on one text -> a new
// output directory holding
//
//   maps.safetensors   layers.{i}.attn [heads, T, T] (+ attn1, attn2, lambda when differential;
//                      V2: lambda [heads, T], one per query token)
//   stats.json         attention statistics (analysis/attention_stats.h) + model and tokens
//   heatmaps/layer_{i}.png        the layer's map averaged over heads
//   heatmaps/layer_{i}_heads.png  every head of the layer
//   report.html        the interactive page (both models side by side with --compare)
//   compare/           maps.safetensors, stats.json and heatmaps/ of the --compare model
//
// The directory is staged and renamed into place when complete; all input is checked before
// anything is written.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace difftx {

struct AttentionJob {
  std::string model_dir;
  std::optional<std::string> text;    // exactly one of text and tokens
  std::optional<std::string> tokens;  // comma-separated ids
  std::string out_dir;
  std::optional<std::string> span;         // "START:END", token indices, END exclusive
  std::optional<std::string> compare_dir;  // a second model, e.g. the baseline
  double threshold = 0.1;                  // sparsity threshold on |a|
  bool activations = false;                // Table 5 magnitudes into stats.json
};

struct AttentionJobSummary {
  int64_t tokens = 0, layers = 0;
  std::vector<std::string> files;  // relative to the output directory
};

// Throws Error on bad input (missing tokenizer for --text, empty text, text longer than the
// context, span outside the text, output directory that exists and is not empty or cannot be
// created); nothing is left at out_dir then.
AttentionJobSummary run_attention_job(const AttentionJob& job);

}  // namespace difftx
