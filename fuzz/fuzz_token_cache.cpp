// libFuzzer target: decode_token_cache on arbitrary bytes. A bad cache must come back as
// "invalid" (nullopt with a reason), never as an exception, a crash, a sanitizer report or an
// allocation larger than the input; a cache that decodes must hold only ids below the
// vocabulary and survive encode -> decode unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "train/token_cache.h"

namespace {
// The identity the seed corpus was written with (fuzz/make_seeds.py), so that mutations get
// past the identity check and reach the id checks.
const nlohmann::json& identity() {
  static const nlohmann::json id = {
      {"tokenizer", "byte-fuzz"},
      {"sources", nlohmann::json::array({{{"path", "/fuzz.txt"}, {"bytes", 5}, {"fnv1a", "00"}}})}};
  return id;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const int32_t vocab : {257, 1}) {
    std::string why;
    const auto ids = difftx::decode_token_cache(data, size, identity(), vocab, &why);
    if (!ids) {
      if (why.empty()) std::abort();  // every refusal says why
      continue;
    }
    if (ids->size() > size / 4) std::abort();
    for (uint32_t id : *ids)
      if (id >= static_cast<uint32_t>(vocab)) std::abort();
    const auto image = difftx::encode_token_cache(identity(), vocab, *ids);
    const auto back = difftx::decode_token_cache(image.data(), image.size(), identity(), vocab, &why);
    if (!back || *back != *ids) std::abort();
  }
  return 0;
}
