#include "io/hf_convert.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "io/gguf_writer.h"
#include "io/hf_export.h"

namespace fs = std::filesystem;

namespace difftx {
using json = nlohmann::json;

namespace {

bool plain_file_name(const std::string& f) {
  return !f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos &&
         f.find('\\') == std::string::npos;
}

// The files besides config and weights that a model directory may hold (SPEC section 2):
// Hugging Face tokenizer and generation files, and this project's tokenizer descriptor with
// the files it lists.
std::vector<std::string> tokenizer_files(const std::string& src) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                        "generation_config.json", "tokenizer.model", "difftx_tokenizer.json"})
    if (fs::is_regular_file(fs::path(src) / f, ec)) names.push_back(f);
  const fs::path desc = fs::path(src) / "difftx_tokenizer.json";
  if (fs::is_regular_file(desc, ec)) {
    try {
      const json d = json::parse(read_file_text(desc.string()));
      if (d.contains("files") && d["files"].is_object())
        for (const auto& [role, f] : d["files"].items())
          if (f.is_string() && plain_file_name(f.get<std::string>()) &&
              fs::is_regular_file(fs::path(src) / f.get<std::string>(), ec))
            names.push_back(f.get<std::string>());
    } catch (const json::exception& e) {
      throw Error(desc.string() + ": invalid JSON (" + std::string(e.what()) + ")");
    }
  }
  return names;
}

void copy_files(const std::string& src, const std::vector<std::string>& names, const std::string& dst) {
  for (const std::string& f : names) {
    const auto bytes = read_file_bytes((fs::path(src) / f).string());
    write_file_atomic((fs::path(dst) / f).string(), bytes.data(), bytes.size());
  }
}

// bos/eos ids for config.json: the source config's own, else the project tokenizer's
// end-of-text id for both (as GPT-2 does), else transformers' class defaults.
HfTokenIds token_ids(const std::string& src) {
  HfTokenIds ids;
  const json cfg = json::parse(read_file_text((fs::path(src) / "config.json").string()));
  std::error_code ec;
  const fs::path desc = fs::path(src) / "difftx_tokenizer.json";
  if (fs::is_regular_file(desc, ec)) {
    const json d = json::parse(read_file_text(desc.string()), nullptr, false);
    if (d.is_object() && d.contains("eos_id") && d["eos_id"].is_number_integer() &&
        d["eos_id"].get<int64_t>() >= 0)
      ids.bos = ids.eos = d["eos_id"].dump();
  }
  if (cfg.contains("bos_token_id")) ids.bos = cfg["bos_token_id"].dump();
  if (cfg.contains("eos_token_id")) ids.eos = cfg["eos_token_id"].dump();
  return ids;
}

void write_difftx_form(const std::string& dir, const Model& m, DType dtype) {
  std::vector<TensorToWrite> tensors;
  for (const auto& spec : m.layout.tensors) tensors.push_back({spec.name, spec.shape, m.at(spec.offset), dtype});
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                    {{"format", "pt"}, {"writer", "difftx"}});
  write_file_atomic((fs::path(dir) / "config.json").string(), config_to_json(m.config));
}

}  // namespace

std::string convert_model(const std::string& src, const std::string& out, const ConvertOptions& o) {
  const auto model = load_model(src);
  const std::vector<std::string> extra = tokenizer_files(src);
  const char* dt = dtype_name(o.dtype);
  if (o.to == ConvertTarget::kGguf) {
    std::string file = out, note;
    if (file.size() < 5 || file.compare(file.size() - 5, 5, ".gguf") != 0) {
      StagedDirectory staged(out);
      note = write_gguf((fs::path(staged.path()) / "model.gguf").string(), *model, src, o.dtype);
      staged.commit();
      file = (fs::path(out) / "model.gguf").string();
    } else {
      std::error_code ec;
      if (fs::exists(file, ec))
        throw Error(file + " already exists; choose a new output path (convert never replaces a file)");
      note = write_gguf(file, *model, src, o.dtype);
    }
    return "wrote " + file + ": GGUF v3 (llama, " + dt + "); tokenizer: " + note;
  }
  StagedDirectory staged(out);
  std::string what;
  if (o.to == ConvertTarget::kHuggingFace) {
    const auto hf = to_hf_form(*model);
    write_hf_weights(staged.path(), *hf, o.dtype, o.max_shard_bytes);
    write_file_atomic((fs::path(staged.path()) / "config.json").string(),
                      hf_config_json(hf->config, o.dtype, token_ids(src)));
    what = std::string("Hugging Face ") + (hf->config.is_diff() ? "DiffLlama" : "Llama");
  } else {
    write_difftx_form(staged.path(), *model, o.dtype);
    what = "difftx";
  }
  copy_files(src, extra, staged.path());
  staged.commit();
  return "wrote " + out + ": " + what + " (" + dt + ")";
}

}  // namespace difftx
