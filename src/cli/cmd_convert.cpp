#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "io/hf_convert.h"

namespace difftx::cli {

Runner add_convert(CLI::App& app) {
  struct Opts {
    std::string model, out, to, dtype = "f32";
  };
  auto o = std::make_shared<Opts>();
  add_model_dir(app, o->model, "model directory to convert (any form difftx loads)");
  app.add_option("--out", o->out,
                 "new directory to write (must not exist or be empty); for gguf a FILE.gguf or a "
                 "directory that gets model.gguf")
      ->required();
  app.add_option("--to", o->to,
                 "hf: Hugging Face transformers (DiffLlama / Llama); difftx: this project's form "
                 "with every key explicit; gguf: llama.cpp (llama models)")
      ->required()
      ->check(CLI::IsMember({"hf", "difftx", "gguf"}));
  app.add_option("--dtype", o->dtype, "weights stored as f32, bf16 or f16")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->default_str("f32");
  return [o]() {
    ConvertOptions opts;
    opts.to = o->to == "hf" ? ConvertTarget::kHuggingFace
              : o->to == "gguf" ? ConvertTarget::kGguf
                                : ConvertTarget::kDifftx;
    opts.dtype = o->dtype == "bf16" ? DType::kBF16 : o->dtype == "f16" ? DType::kF16 : DType::kF32;
    std::printf("%s\n", convert_model(o->model, o->out, opts).c_str());
    return 0;
  };
}

}  // namespace difftx::cli
