#pragma once
// Task data as JSON lines (SPEC section 3): one object per line,
//   classification  {"text": string, "label": string or integer}
//   summarization   {"document": string, "summary": string}
// Other keys are ignored. Bad input is an Error naming the file and the 1-based line: a line
// that is empty or not a JSON object, a missing or mistyped field, an empty text; a file with
// no examples. The file's SHA-256 (and, when scripts/fetch-task-data.sh made it, the package-list
// snapshot it comes from) identifies it in results.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace difftx {

struct TextExample {
  std::string text, label;  // label "" when the file has none (predict)
  int64_t line = 0;
};

struct SummaryExample {
  std::string document, summary;  // summary "" when the file has none (run)
  int64_t line = 0;
};

struct TaskFile {
  std::string path, sha256;
  std::string snapshot_sha256;  // "" unless DIR/snapshot.json lists this file with its hash
};

struct ClassificationData {
  TaskFile file;
  std::vector<TextExample> examples;
};

struct SummarizationData {
  TaskFile file;
  std::vector<SummaryExample> examples;
};

// need_label / need_summary: the field is required (training, evaluation) or may be absent
// (prediction). Throws Error.
ClassificationData read_classification_data(const std::string& path, bool need_label = true);
SummarizationData read_summarization_data(const std::string& path, bool need_summary = true);

// The classes of a training set: its distinct labels in sorted order. Throws Error (naming the
// file) when there are fewer than two.
std::vector<std::string> class_labels(const ClassificationData& train);

// Class indices of data's labels in `labels`; a label not among them is an Error naming the
// file and line (e.g. a label seen only in test data).
std::vector<int> label_indices(const ClassificationData& data,
                               const std::vector<std::string>& labels);

// {"path", "sha256"} (+ "snapshot_sha256" when known), for results.
nlohmann::json to_json(const TaskFile& f);
// The same with the path made absolute: what a run stores to find its data again.
nlohmann::json to_json_absolute(const TaskFile& f);

}  // namespace difftx
