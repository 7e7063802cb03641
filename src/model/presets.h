#pragma once
// Named model sizes for `difftx train --preset NAME`: tiny-{diff,diffv2,llama} for tests,
// small-* for the demo, ref-* for the reference benchmark config.
// The vocabulary size comes from the tokenizer.
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace difftx {

std::vector<std::string> preset_names();
// Throws Error for an unknown name.
Config preset_config(const std::string& name, int64_t vocab_size);

}  // namespace difftx
