#include "io/hf_shard_index.h"

#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace difftx {
using json = nlohmann::json;

std::vector<std::string> ShardIndex::files() const {
  std::set<std::string> s;
  for (const auto& [name, file] : weight_map) s.insert(file);
  return {s.begin(), s.end()};
}

ShardIndex parse_shard_index(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(where + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  if (!j.contains("weight_map") || !j.at("weight_map").is_object())
    throw Error(where + ": \"weight_map\" (tensor name -> shard file) is missing or not an object");
  ShardIndex index;
  for (const auto& [name, file] : j.at("weight_map").items()) {
    if (!file.is_string())
      throw Error(where + ": weight_map entry \"" + name + "\" must be a file name, got " +
                  file.dump());
    const std::string f = file.get<std::string>();
    if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos ||
        f.find('\\') != std::string::npos || f.find('\0') != std::string::npos)
      throw Error(where + ": weight_map entry \"" + name + "\" names \"" + f +
                  "\", which is not a file name inside the model directory");
    index.weight_map[name] = f;
  }
  if (index.weight_map.empty()) throw Error(where + ": weight_map is empty");
  return index;
}

std::string shard_index_json(const ShardIndex& index, uint64_t total_size) {
  json j;
  j["metadata"] = {{"total_size", total_size}};
  j["weight_map"] = index.weight_map;
  return j.dump(2) + "\n";
}

}  // namespace difftx
