#pragma once
// Everything that defines a training run, as stored in its train_state: the data, the
// tokenizer, the optimiser and schedule, the batch shape, the seed, the precision and the
// monitoring period. Fields have the names used in train_state's "options" object; errors
// about a value name the field (check_field), and the CLI shows the matching flag.
//
// Resume rules (SPEC section 3): a resumed run takes every stored value. A value the caller
// gives again must equal the stored one when it would change the run (kFixedOnResume);
// "steps" may grow (not below the step reached); the rest (checkpoint, evaluation and log
// periods, bad-step patience, monitoring period) only change what is saved or shown and may
// be given anew.
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "train/trainer.h"

namespace difftx {

struct RunSettings {
  std::string data;               // training text (absolute path, file, folder or glob)
  std::string val;                // validation text ("" = none)
  std::string tokenizer = "byte"; // tokenizer spec of a new run (make_tokenizer)
  TrainOptions train;
  int64_t attn_stats_every = 0;   // attention monitoring period in steps (0: off)
};

// Throws Error naming the field of the first value out of range.
void validate(const RunSettings& s);

// train_state's "options" object, one key per field (warmup resolved: -1 becomes 5% of steps).
nlohmann::json settings_to_json(const RunSettings& s);
// Reads what settings_to_json wrote; keys absent from an older train_state keep the value in
// `defaults`. A key of the wrong type or range throws Error naming `where` and the key.
RunSettings settings_from_json(const nlohmann::json& j, const RunSettings& defaults,
                               const std::string& where);

// The settings of a resumed run: `stored`, with the fields listed in `given` (field names, as
// in settings_to_json) taken from `requested` where the rules above allow; a given field that
// would change the run throws Error naming the field and both values. `step` is the step the
// run has reached; `dir` names the run in messages.
RunSettings merge_for_resume(const RunSettings& stored, const RunSettings& requested,
                             const std::set<std::string>& given, int64_t step,
                             const std::string& dir);

}  // namespace difftx
