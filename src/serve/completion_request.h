#pragma once
// The body of POST /v1/completions (OpenAI's legacy completions API), parsed and checked.
// Unknown fields are ignored, as OpenAI clients send many; a field of the wrong type or out of
// range is an Error whose message the server returns with HTTP 400.
#include <cstdint>
#include <string>
#include <vector>

#include "infer/generate.h"

namespace difftx::serve {

struct CompletionRequest {
  std::vector<std::string> prompts;  // "prompt": a string or a list of strings
  bool max_tokens_given = false;     // absent: 16 (OpenAI's default), capped by the context
  GenerateOptions gen;               // max_tokens, temperature, top_p, stop, seed
  bool stream = false;
};

// Throws Error (one line, naming the field) for bad JSON, wrong types or values out of range.
CompletionRequest parse_completion_request(const std::string& body);

}  // namespace difftx::serve
