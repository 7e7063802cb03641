#pragma once
// The metadata of train_state.safetensors (key "difftx_train_state"): the step reached, the
// skipped-step count, AdamW's step count, the run's options (run_settings.h) and the model
// config. Written by Trainer::save_to, read here with every key's type checked.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace difftx {

inline constexpr const char* kTrainStateFile = "train_state.safetensors";
inline constexpr const char* kTrainStateKey = "difftx_train_state";

struct TrainStateMeta {
  int64_t step = 0, skipped = 0, adam_steps = 0;
  nlohmann::json options = nlohmann::json::object();
  nlohmann::json config = nlohmann::json::object();
};

std::string train_state_meta_to_text(const TrainStateMeta& m);
// Throws Error naming `where` for text that is not such an object or holds a mistyped key.
TrainStateMeta parse_train_state_meta(const std::string& text, const std::string& where);

}  // namespace difftx
