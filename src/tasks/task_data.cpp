#include "tasks/task_data.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "tasks/sha256.h"

namespace difftx {
namespace {

[[noreturn]] void fail_at(const std::string& path, int64_t line, const std::string& what) {
  detail::fail_with(path, ":", line, ": ", what);
}

// The snapshot hash recorded by scripts/fetch-task-data.sh beside the files it built, when it
// lists this file with the same content hash.
std::string snapshot_of(const std::string& path, const std::string& sha) {
  namespace fs = std::filesystem;
  const fs::path meta = fs::path(path).parent_path() / "snapshot.json";
  std::error_code ec;
  if (!fs::is_regular_file(meta, ec)) return "";
  try {
    const auto j = nlohmann::json::parse(read_file_text(meta.string()));
    const std::string name = fs::path(path).filename().string();
    if (j.at("files").value(name, "") == sha) return j.at("snapshot_sha256").get<std::string>();
  } catch (const std::exception&) {
  }
  return "";
}

// Calls row(object, line) for every line of the file; checks the JSON structure.
TaskFile read_lines(const std::string& path,
                    const std::function<void(const nlohmann::json&, int64_t)>& row) {
  const std::string text = read_file_text(path);
  TaskFile f{path, sha256_hex(text), ""};
  f.snapshot_sha256 = snapshot_of(path, f.sha256);
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string_view s(text.data() + pos, end - pos);
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    pos = end + 1;
    check(!s.empty(), path, ":", line, ": empty line (every line must be one JSON object)");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(s);
    } catch (const nlohmann::json::parse_error& e) {
      fail_at(path, line, std::string("not JSON (") + e.what() + ")");
    }
    check(j.is_object(), path, ":", line, ": not a JSON object");
    row(j, line);
  }
  check(line > 0, path, ": no examples (the file is empty)");
  return f;
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& path,
                         int64_t line, bool required, bool allow_integer) {
  const auto it = j.find(key);
  if (it == j.end()) {
    check(!required, path, ":", line, ": missing field \"", key, "\"");
    return "";
  }
  if (allow_integer && it->is_number_integer()) return std::to_string(it->get<int64_t>());
  check(it->is_string(), path, ":", line, ": field \"", key, "\" must be a string",
        allow_integer ? " or an integer" : "");
  return it->get<std::string>();
}

}  // namespace

ClassificationData read_classification_data(const std::string& path, bool need_label) {
  ClassificationData d;
  d.file = read_lines(path, [&](const nlohmann::json& j, int64_t line) {
    TextExample e;
    e.line = line;
    e.text = string_field(j, "text", path, line, true, false);
    check(!e.text.empty(), path, ":", line, ": empty \"text\"");
    e.label = string_field(j, "label", path, line, need_label, true);
    check(!need_label || !e.label.empty(), path, ":", line, ": empty \"label\"");
    d.examples.push_back(std::move(e));
  });
  return d;
}

SummarizationData read_summarization_data(const std::string& path, bool need_summary) {
  SummarizationData d;
  d.file = read_lines(path, [&](const nlohmann::json& j, int64_t line) {
    SummaryExample e;
    e.line = line;
    e.document = string_field(j, "document", path, line, true, false);
    check(!e.document.empty(), path, ":", line, ": empty \"document\"");
    e.summary = string_field(j, "summary", path, line, need_summary, false);
    check(!need_summary || !e.summary.empty(), path, ":", line, ": empty \"summary\"");
    d.examples.push_back(std::move(e));
  });
  return d;
}

std::vector<std::string> class_labels(const ClassificationData& train) {
  std::set<std::string> s;
  for (const auto& e : train.examples) s.insert(e.label);
  check(s.size() >= 2, train.file.path, ": ", s.size(),
        " class(es) in the training data; classification needs at least two labels");
  return {s.begin(), s.end()};
}

std::vector<int> label_indices(const ClassificationData& data,
                               const std::vector<std::string>& labels) {
  std::vector<int> out;
  out.reserve(data.examples.size());
  for (const auto& e : data.examples) {
    const auto it = std::lower_bound(labels.begin(), labels.end(), e.label);
    check(it != labels.end() && *it == e.label, data.file.path, ":", e.line, ": label \"",
          e.label, "\" is not one of the model's ", labels.size(),
          " classes (a label must occur in the training data)");
    out.push_back(static_cast<int>(it - labels.begin()));
  }
  return out;
}

nlohmann::json to_json(const TaskFile& f) {
  nlohmann::json j{{"path", f.path}, {"sha256", f.sha256}};
  if (!f.snapshot_sha256.empty()) j["snapshot_sha256"] = f.snapshot_sha256;
  return j;
}

nlohmann::json to_json_absolute(const TaskFile& f) {
  nlohmann::json j = to_json(f);
  std::error_code ec;
  const auto abs = std::filesystem::absolute(f.path, ec);
  if (!ec) j["path"] = abs.lexically_normal().string();
  return j;
}

}  // namespace difftx
