#include "io/checkpoint.h"

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace difftx {

std::unique_ptr<Model> load_model(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error("model directory not found: " + dir);
  if (!fs::is_directory(dir, ec)) throw Error(dir + " is not a model directory");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const std::string weights_path = (fs::path(dir) / "model.safetensors").string();
  if (!fs::exists(config_path, ec)) throw Error("missing " + config_path);
  if (!fs::exists(weights_path, ec)) throw Error("missing " + weights_path);
  const Config config = load_config(config_path);
  auto model = std::make_unique<Model>(config);
  const SafetensorsFile file = SafetensorsFile::read(weights_path);
  for (const auto& spec : model->layout.tensors) {
    const StTensor* t = file.find(spec.name);
    if (!t) throw Error(weights_path + ": missing tensor \"" + spec.name + "\"");
    if (t->shape != spec.shape) {
      auto str = [](const std::vector<int64_t>& s) {
        std::string r = "[";
        for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
        return r + "]";
      };
      throw Error(weights_path + ": tensor \"" + spec.name + "\" has shape " + str(t->shape) +
                  " but config.json needs " + str(spec.shape));
    }
    file.to_float(*t, model->at(spec.offset));
  }
  for (const auto& t : file.tensors())
    if (!model->layout.find(t.name))
      warn(weights_path + ": ignoring unknown tensor \"" + t.name + "\"");
  return model;
}

void write_model_files(const std::string& dir, const Model& model) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create directory " + dir + ": " + ec.message());
  std::vector<TensorToWrite> tensors;
  for (const auto& spec : model.layout.tensors)
    tensors.push_back({spec.name, spec.shape, model.at(spec.offset)});
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                    {{"format", "pt"}, {"writer", "difftx"}});
  write_file_atomic((fs::path(dir) / "config.json").string(), config_to_json(model.config));
}

void save_new_model(const std::string& dir, const Model& model) {
  StagedDirectory staged(dir);
  write_model_files(staged.path(), model);
  staged.commit();
}

}  // namespace difftx
