// libFuzzer target: train_state metadata (parse_train_state_meta) and the run options inside it
// (settings_from_json) on arbitrary text. Damaged input must end in difftx::Error; any other
// exception, a crash or a sanitizer report is a finding. What parses must survive writing and
// reading back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "train/run_settings.h"
#include "train/train_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  difftx::TrainStateMeta meta;
  try {
    meta = difftx::parse_train_state_meta(text, "fuzz");
  } catch (const difftx::Error&) {
    return 0;
  }
  const difftx::TrainStateMeta back =
      difftx::parse_train_state_meta(difftx::train_state_meta_to_text(meta), "fuzz round trip");
  if (back.step != meta.step || back.skipped != meta.skipped || back.adam_steps != meta.adam_steps ||
      back.options != meta.options || back.config != meta.config)
    std::abort();
  difftx::RunSettings settings;
  try {
    settings = difftx::settings_from_json(meta.options, difftx::RunSettings{}, "fuzz");
  } catch (const difftx::Error&) {
    return 0;
  }
  const auto j = difftx::settings_to_json(settings);
  if (difftx::settings_to_json(difftx::settings_from_json(j, difftx::RunSettings{}, "fuzz round trip")) != j)
    std::abort();
  return 0;
}
