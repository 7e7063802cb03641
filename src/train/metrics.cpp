#include "train/metrics.h"

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"

namespace difftx {

MetricsLog::MetricsLog(const std::string& model_dir, int64_t resume_step)
    : path_((std::filesystem::path(model_dir) / "metrics.jsonl").string()) {
  std::string kept;
  if (resume_step >= 0 && std::filesystem::exists(path_)) {
    std::istringstream in(read_file_text(path_));
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
          j["step"].get<int64_t>() <= resume_step)
        kept += line + "\n";
    }
  }
  write_file_atomic(path_, kept);
  f_ = std::fopen(path_.c_str(), "a");
  if (!f_) throw Error("cannot append to " + path_);
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const std::string& json_line) {
  if (std::fprintf(f_, "%s\n", json_line.c_str()) < 0 || std::fflush(f_) != 0)
    throw Error("cannot write " + path_ + " (disk full?)");
}

}  // namespace difftx
