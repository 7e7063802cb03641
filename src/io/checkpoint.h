#pragma once
// A model directory: config.json + model.safetensors (+ tokenizer files in later stages).
#include <memory>
#include <string>

#include "model/params.h"

namespace difftx {

// Loads and validates a model directory. Missing/extra/mis-shaped tensors: Error (extra
// tensors only warn). Throws Error with the path in the message.
std::unique_ptr<Model> load_model(const std::string& dir);

// Writes config.json and model.safetensors into dir (created if needed), each atomically.
void write_model_files(const std::string& dir, const Model& model);

// Creates a new model directory (must not exist or be empty) all at once: nothing appears at
// `dir` unless every file was written.
void save_new_model(const std::string& dir, const Model& model);

}  // namespace difftx
