// libFuzzer target: parse_config on arbitrary text, with both layout defaults. A bad config
// must end in difftx::Error; any other exception, a crash or a sanitizer report is a finding.
// A config that parses must survive config_to_json -> parse_config unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "model/config.h"

namespace {
bool same(const difftx::Config& a, const difftx::Config& b) {
  return a.model_type == b.model_type && a.vocab_size == b.vocab_size &&
         a.hidden_size == b.hidden_size && a.intermediate_size == b.intermediate_size &&
         a.num_hidden_layers == b.num_hidden_layers &&
         a.num_attention_heads == b.num_attention_heads &&
         a.num_key_value_heads == b.num_key_value_heads && a.head_dim == b.head_dim &&
         a.rms_norm_eps == b.rms_norm_eps && a.rope_theta == b.rope_theta &&
         a.rope_scaling == b.rope_scaling &&
         a.max_position_embeddings == b.max_position_embeddings &&
         a.tie_word_embeddings == b.tie_word_embeddings && a.lambda_std_dev == b.lambda_std_dev &&
         a.diff_split_layout == b.diff_split_layout && a.rope_interleaved == b.rope_interleaved &&
         a.diff_norm_affine == b.diff_norm_affine;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (auto defaults : {difftx::LayoutDefaults::kHuggingFace, difftx::LayoutDefaults::kOfficial}) {
    difftx::Config c;
    try {
      c = difftx::parse_config(text, "fuzz", defaults);
    } catch (const difftx::Error&) {
      continue;
    }
    // Not inside the try: an Error on re-reading our own output is a finding too.
    const difftx::Config back = difftx::parse_config(difftx::config_to_json(c), "fuzz round trip",
                                                     difftx::LayoutDefaults::kHuggingFace);
    if (!same(c, back)) std::abort();
  }
  return 0;
}
