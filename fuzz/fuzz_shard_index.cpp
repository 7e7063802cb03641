// libFuzzer target: parse_shard_index (model.safetensors.index.json) on arbitrary text. A bad
// index must end in difftx::Error; any other exception, a crash or a sanitizer report is a
// finding. An index that parses names only plain file names and survives
// shard_index_json -> parse_shard_index unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "io/hf_shard_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  difftx::ShardIndex index;
  try {
    index = difftx::parse_shard_index(text, "fuzz");
  } catch (const difftx::Error&) {
    return 0;
  }
  for (const std::string& f : index.files())
    if (f.empty() || f == ".." || f.find('/') != std::string::npos) std::abort();
  const difftx::ShardIndex back =
      difftx::parse_shard_index(difftx::shard_index_json(index, 0), "fuzz round trip");
  if (back.weight_map != index.weight_map) std::abort();
  return 0;
}
