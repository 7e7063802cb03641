#pragma once
// Shared test fixture: a tiny model directory (random weights, optionally the byte tokenizer),
// made through the library in milliseconds, for tests that run the difftx program on a model.
#include <cstdint>
#include <filesystem>
#include <string>

#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "model/config.h"
#include "model/params.h"
#include "model/transformer.h"

namespace difftx::test {

struct TinyModel {
  std::string model_type = "diffllama";  // or "llama"
  int vocab_size = 257;                  // the byte tokenizer's size
  int max_positions = 64;
  int layers = 2;
  uint64_t seed = 3;
  bool byte_tokenizer = true;  // save the byte tokenizer in the directory
};

// config.json text of a tiny model: hidden 16, 4 heads of 4, MLP 24.
inline std::string tiny_config_json(const TinyModel& t = {}) {
  return R"({"model_type": ")" + t.model_type + R"(", "vocab_size": )" +
         std::to_string(t.vocab_size) +
         R"(, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": )" +
         std::to_string(t.layers) + R"(, "num_attention_heads": 4, "max_position_embeddings": )" +
         std::to_string(t.max_positions) + "}";
}

// Writes the model directory `dir` (created; must not hold a model yet) and returns it.
inline std::filesystem::path make_tiny_model(const std::filesystem::path& dir,
                                             const TinyModel& t = {}) {
  const Config c = parse_config(tiny_config_json(t), "tiny test config", LayoutDefaults::kOfficial);
  Model m(c);
  init_parameters(m, t.seed);
  save_new_model(dir.string(), m);
  if (t.byte_tokenizer) make_byte_tokenizer()->save(dir.string());
  return dir;
}

}  // namespace difftx::test
