// libFuzzer target: the Hugging Face tokenizer.json loader (hf::Pipeline) on arbitrary bytes.
// A bad file must end in difftx::Error; any other exception, a crash or a sanitizer report is
// a finding. A file that loads must encode a few texts (and the input bytes themselves, valid
// UTF-8 or not) and decode every id it produced without anything but Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "io/tokenizer_hf_pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    const difftx::hf::Pipeline p(input, "fuzz.json");
    const std::string_view texts[] = {"Hello world! ab ab", " \xC3\xA9\xE2\x98\x83 <s></s>\n\n  x",
                                      "\xFF\xFE\xC3(", input.substr(0, 256)};
    for (const std::string_view t : texts)
      for (const bool special : {false, true}) {
        difftx::DecodeState state;
        std::string out;
        for (const int32_t id : p.encode(t, special)) {
          if (id < 0 || id >= p.vocab_size()) __builtin_trap();  // encode gave a bad id
          p.decode_append(id, state, out);
        }
      }
  } catch (const difftx::Error&) {
  }
  return 0;
}
