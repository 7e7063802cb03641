#pragma once
// model.safetensors.index.json, the index of a sharded Hugging Face checkpoint:
// {"metadata": {"total_size": N, ...}, "weight_map": {tensor name: shard file name}}.
#include <map>
#include <string>
#include <vector>

namespace difftx {

struct ShardIndex {
  std::map<std::string, std::string> weight_map;  // tensor -> shard file (a plain file name)
  std::vector<std::string> files() const;         // each shard once, sorted
};

// Parses and validates (a non-empty weight_map of strings; shard names are plain file names
// inside the model directory: no separators, no "." or ".."). `where` names the source in
// errors. Throws Error.
ShardIndex parse_shard_index(const std::string& json_text, const std::string& where);

// The index text as Hugging Face writes it (sorted keys, indent 2, trailing newline).
std::string shard_index_json(const ShardIndex& index, uint64_t total_size);

}  // namespace difftx
