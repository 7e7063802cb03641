#pragma once
// `difftx convert`: a model directory rewritten in another form (SPEC section 3).
//   kHuggingFace: what transformers' save_pretrained writes for DiffLlama / Llama
//   kDifftx:      this project's form, every config key explicit
//   kGguf:        a GGUF v3 file for llama.cpp (llama models only)
#include <cstdint>
#include <string>

#include "io/safetensors.h"

namespace difftx {

enum class ConvertTarget { kHuggingFace, kDifftx, kGguf };

struct ConvertOptions {
  ConvertTarget to = ConvertTarget::kHuggingFace;
  DType dtype = DType::kF32;
  uint64_t max_shard_bytes = 5'000'000'000ull;  // Hugging Face's default "5GB"
};

// Reads the model directory `src` and writes `out` (a new directory, which must not exist or
// be empty, appearing only when complete; for kGguf a file `out`, or out/model.gguf when `out`
// does not end in .gguf). Tokenizer and generation files are copied along. Returns a one-line
// summary. Throws Error.
std::string convert_model(const std::string& src, const std::string& out, const ConvertOptions& o);

}  // namespace difftx
