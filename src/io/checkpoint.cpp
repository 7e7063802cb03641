#include "io/checkpoint.h"

#include <filesystem>
#include <map>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "io/hf_shard_index.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace difftx {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Hugging Face files may carry the rotary frequencies as buffers; they follow from the config.
bool is_ignored_tensor(const std::string& name) {
  const std::string suffix = "rotary_emb.inv_freq";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.');
}

// Copies tensor t of `file` into its place in the model, if the model has such a tensor.
// Returns whether it did.
bool load_tensor(const SafetensorsFile& file, const StTensor& t, const std::string& where,
                 Model& model) {
  const TensorSpec* spec = model.layout.find(t.name);
  if (!spec) {
    if (!is_ignored_tensor(t.name)) warn(where + ": ignoring unknown tensor \"" + t.name + "\"");
    return false;
  }
  if (t.shape != spec->shape)
    throw Error(where + ": tensor \"" + t.name + "\" has shape " + shape_str(t.shape) +
                " but config.json needs " + shape_str(spec->shape));
  file.to_float(t, model.at(spec->offset));
  return true;
}

void load_single_file(const std::string& weights_path, Model& model) {
  const SafetensorsFile file = SafetensorsFile::open(weights_path);
  for (const auto& spec : model.layout.tensors)
    if (!file.find(spec.name))
      throw Error(weights_path + ": missing tensor \"" + spec.name + "\"");
  for (const auto& t : file.tensors()) load_tensor(file, t, weights_path, model);
}

// A sharded checkpoint: each shard is read once, in turn; every tensor must sit in the shard
// the index names and in no other.
void load_sharded(const std::string& dir, const std::string& index_path, Model& model) {
  const ShardIndex index = parse_shard_index(read_file_text(index_path), index_path);
  std::map<std::string, std::string> found;  // tensor -> the shard it was read from
  std::string misplaced;
  for (const std::string& shard : index.files()) {
    const std::string path = (fs::path(dir) / shard).string();
    std::error_code ec;
    if (!fs::exists(path, ec))
      throw Error(index_path + " names shard " + shard + ", which is missing from " + dir +
                  " (copy every shard of the checkpoint)");
    const SafetensorsFile file = SafetensorsFile::open(path);
    for (const auto& t : file.tensors()) {
      const auto seen = found.find(t.name);
      if (seen != found.end())
        throw Error(path + ": tensor \"" + t.name + "\" is also in shard " + seen->second +
                    " (a tensor must be in one shard only)");
      found[t.name] = shard;
      const auto named = index.weight_map.find(t.name);
      if (named == index.weight_map.end()) {
        if (model.layout.find(t.name))
          throw Error(path + ": tensor \"" + t.name + "\" is not in " + index_path);
      } else if (named->second != shard && misplaced.empty()) {
        // Reported after every shard was seen: it may also be in two shards, said first.
        misplaced = path + ": tensor \"" + t.name + "\" is here but " + index_path +
                    " places it in " + named->second;
      }
      load_tensor(file, t, path, model);
    }
  }
  if (!misplaced.empty()) throw Error(misplaced);
  for (const auto& [name, shard] : index.weight_map)
    if (!found.count(name))
      throw Error(index_path + " places tensor \"" + name + "\" in " + shard +
                  ", which does not hold it");
  for (const auto& spec : model.layout.tensors)
    if (!found.count(spec.name))
      throw Error(index_path + ": missing tensor \"" + spec.name + "\" (in no shard)");
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error("model directory not found: " + dir);
  if (!fs::is_directory(dir, ec)) throw Error(dir + " is not a model directory");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const std::string weights_path = (fs::path(dir) / "model.safetensors").string();
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  if (!fs::exists(config_path, ec)) throw Error("missing " + config_path);
  const bool sharded = !fs::exists(weights_path, ec) && fs::exists(index_path, ec);
  if (!sharded && !fs::exists(weights_path, ec))
    throw Error("missing " + weights_path + " (or model.safetensors.index.json and its shards)");
  const Config config = load_config(config_path);
  auto model = std::make_unique<Model>(config);
  if (sharded) load_sharded(dir, index_path, *model);
  else load_single_file(weights_path, *model);
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
