#include "train/train_state.h"

#include "core/error.h"

namespace difftx {
namespace {
using json = nlohmann::json;

int64_t count_at(const json& j, const char* key, int64_t fallback, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  check(it->is_number_integer() && (it->is_number_unsigned() ? it->get<uint64_t>() <= (uint64_t{1} << 62)
                                                             : it->get<int64_t>() >= 0),
        where, ": training state \"", key, "\" is not a count >= 0");
  return it->get<int64_t>();
}
}  // namespace

std::string train_state_meta_to_text(const TrainStateMeta& m) {
  return json{{"step", m.step}, {"skipped", m.skipped}, {"adam_steps", m.adam_steps},
              {"options", m.options}, {"config", m.config}}
      .dump();
}

TrainStateMeta parse_train_state_meta(const std::string& text, const std::string& where) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && j.is_object(), where, ": damaged training state metadata (not a JSON object)");
  check(j.contains("step") && j.contains("config"), where,
        ": damaged training state metadata (no \"step\" or \"config\")");
  TrainStateMeta m;
  m.step = count_at(j, "step", 0, where);
  m.skipped = count_at(j, "skipped", 0, where);
  m.adam_steps = count_at(j, "adam_steps", m.step, where);
  check(j["config"].is_object(), where, ": training state \"config\" is not an object");
  m.config = j["config"];
  if (j.contains("options")) {
    check(j["options"].is_object(), where, ": training state \"options\" is not an object");
    m.options = j["options"];
  }
  return m;
}

}  // namespace difftx
