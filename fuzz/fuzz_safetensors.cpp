// libFuzzer target: SafetensorsFile::parse on arbitrary bytes. A bad file must end in
// difftx::Error; any other exception, a crash or a sanitizer report is a finding. Files that
// parse are converted to float tensor by tensor, then written back and re-read (round trip).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  try {
    const difftx::SafetensorsFile f = difftx::SafetensorsFile::parse(std::move(bytes), "fuzz");
    std::vector<std::vector<float>> values;
    std::vector<difftx::TensorToWrite> out;
    for (const difftx::StTensor& t : f.tensors()) {
      if (t.end - t.begin != t.numel() * difftx::dtype_size(t.dtype)) std::abort();
      values.push_back(f.to_float(t));
    }
    for (size_t i = 0; i < f.tensors().size(); ++i)
      out.push_back({f.tensors()[i].name, f.tensors()[i].shape, values[i].data()});
    // What parse accepted must serialise and parse again to the same tensors.
    const difftx::SafetensorsFile g = difftx::SafetensorsFile::parse(
        difftx::serialize_safetensors(out, f.metadata()), "fuzz round trip");
    if (g.tensors().size() != f.tensors().size()) std::abort();
    for (size_t i = 0; i < values.size(); ++i) {
      const difftx::StTensor* t = g.find(f.tensors()[i].name);
      if (!t || t->shape != f.tensors()[i].shape) std::abort();
      const std::vector<float> v = g.to_float(*t);
      if (v.size() != values[i].size() ||
          (!v.empty() && std::memcmp(v.data(), values[i].data(), 4 * v.size()) != 0))
        std::abort();
    }
  } catch (const difftx::Error&) {
  }
  return 0;
}
