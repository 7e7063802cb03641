#pragma once
// Task metrics: classification (accuracy, macro-F1, per-class precision/recall/F1, confusion
// matrix) and summarization (ROUGE-1, ROUGE-2, ROUGE-L F-measures). docs/tasks.md defines
// each; tests/test_tasks_metrics.cpp checks them against hand-computed values.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace difftx {

struct ClassScores {
  std::string label;
  double precision = 0, recall = 0, f1 = 0;  // 0 where undefined (no prediction, no example)
  int64_t support = 0;                        // examples of this class in the truth
  int64_t predicted = 0;                      // examples predicted as this class
};

struct ClassificationMetrics {
  int64_t examples = 0;
  double accuracy = 0;
  // Mean F1 over the classes that occur in the truth or the predictions (as scikit-learn
  // does when no label list is given): a class absent from both says nothing.
  double macro_f1 = 0;
  std::vector<ClassScores> per_class;           // in label order
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
};

// truth and predicted hold class indices into labels; throws Error on a size mismatch or an
// index out of range.
ClassificationMetrics classification_metrics(const std::vector<int>& truth,
                                             const std::vector<int>& predicted,
                                             const std::vector<std::string>& labels);

// {"examples", "accuracy", "macro_f1", "per_class": {label: {precision, recall, f1, support}},
//  "labels": [...], "confusion": [[...]]} (rows: true class, columns: predicted, label order).
nlohmann::json to_json(const ClassificationMetrics& m);

// ROUGE tokens as the reference implementations make them (ROUGE-1.5.5 and Google's
// rouge-score without stemming): ASCII letters lowercased, every byte that is not [a-z0-9]
// becomes a separator, tokens are the non-empty runs between separators.
std::vector<std::string> rouge_tokens(const std::string& text);

struct RougeScores {
  double rouge1 = 0, rouge2 = 0, rougeL = 0;  // F-measures (beta = 1) in [0, 1]
};

// One candidate against one reference. ROUGE-N: clipped n-gram overlap (each reference n-gram
// matches at most as often as it occurs there), P = overlap / candidate n-grams, R = overlap /
// reference n-grams. ROUGE-L: P = LCS / candidate tokens, R = LCS / reference tokens.
// F = 2PR / (P + R), 0 when P + R = 0 (including an empty side).
RougeScores rouge(const std::string& candidate, const std::string& reference);

// The mean of per-pair scores (as rouge-score's aggregation without bootstrap).
struct RougeTotals {
  RougeScores sum;
  int64_t pairs = 0;
  void add(const RougeScores& s);
  RougeScores mean() const;
};

// The first k words (whitespace-separated) of a document: the lead baseline.
std::string lead_words(const std::string& document, int64_t k);

}  // namespace difftx
