// libFuzzer target: parse_completion_request (the body of POST /v1/completions) on arbitrary
// bytes. A bad body must end in difftx::Error (the server's 400); any other exception, a crash
// or a sanitizer report is a finding. A body that parses must hold values in range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "serve/completion_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto r = difftx::serve::parse_completion_request(text);
    if (r.prompts.empty() || r.gen.max_tokens < 0 || r.gen.sampling.temperature < 0 ||
        !(r.gen.sampling.top_p > 0 && r.gen.sampling.top_p <= 1))
      std::abort();
    for (const auto& p : r.prompts)
      if (p.empty()) std::abort();
    for (const auto& s : r.gen.stops)
      if (s.empty()) std::abort();
  } catch (const difftx::Error&) {
  }
  return 0;
}
