#pragma once
// Token id lists given on the command line: "5,17,3".
#include <cstdint>
#include <string>
#include <vector>

namespace difftx {

// Parses comma-separated ids, each an integer in [0, vocab_size). Throws Error naming the
// offending item.
std::vector<int32_t> parse_token_list(const std::string& text, int64_t vocab_size);

}  // namespace difftx
