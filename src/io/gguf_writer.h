#pragma once
// GGUF v3, the file format of llama.cpp, for llama models: general.architecture "llama", the
// llama.* hyperparameters, the tensors under llama.cpp's names with q/k rows in its rotary pair
// order (GPT-J pairs (2i, 2i+1)), rope scaling (linear as keys, llama3 as the rope_freqs tensor,
// as convert_hf_to_gguf.py writes them) and tokenizer.ggml.* from the model's tokenizer files.
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/params.h"

namespace difftx {

// Writes `path` atomically. `model_dir` is where tokenizer files are looked for: a Hugging
// Face tokenizer.json with a byte-level BPE model (GPT-2, Llama-3), or this project's GPT-2
// tokenizer (encoder.json + vocab.bpe); other tokenizers give tokenizer.ggml.model "no_vocab"
// (the summary says so). Matrices are stored in `dtype`, 1-D tensors in F32 (as llama.cpp's
// converter does). Throws Error for models llama.cpp cannot run (diffllama, attention_groupnorm).
// Returns a note on the tokenizer written.
std::string write_gguf(const std::string& path, const Model& m, const std::string& model_dir, DType dtype);

// GGUF value types and ggml tensor types used here (gguf.h / ggml.h numbering).
enum GgufType : uint32_t {
  kGgufU8 = 0, kGgufI8 = 1, kGgufU16 = 2, kGgufI16 = 3, kGgufU32 = 4, kGgufI32 = 5,
  kGgufF32 = 6, kGgufBool = 7, kGgufString = 8, kGgufArray = 9, kGgufU64 = 10, kGgufI64 = 11,
  kGgufF64 = 12
};
enum GgmlType : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlBF16 = 30 };

}  // namespace difftx
