// The "hf" tokenizer: a Hugging Face tokenizer.json (hf::Pipeline) behind the Tokenizer
// interface, with what tokenizer_config.json adds: the bos/eos token names and
// add_bos_token/add_eos_token, which (as transformers' Llama tokenizers do) replace the
// post-processor's special tokens in encode_with_special when the file has either key.
// Without tokenizer_config.json, the end-of-text id is the first added token named
// <|endoftext|>, <|end_of_text|>, </s> or <eos>.
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/files.h"
#include "io/tokenizer.h"
#include "io/tokenizer_hf_pipeline.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

// bos_token / eos_token: a string, or an AddedToken object {"content": ...}; "" when absent.
std::string token_name(const hf::Json& config, const char* key, const std::string& where) {
  const hf::Json* v = hf::field(config, key);
  if (!v) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object() && v->contains("content") && (*v)["content"].is_string())
    return (*v)["content"].get<std::string>();
  throw Error(where + ": " + key + " must be a string or {\"content\": ...}");
}

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(std::string json, std::string config, const std::string& where)
      : json_(std::move(json)), config_(std::move(config)), pipeline_(json_, where) {
    for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"}) {
      eos_ = pipeline_.token_id(name);
      if (eos_ >= 0) break;
    }
    if (!config_.empty()) read_config(where);
  }

  std::string kind() const override { return "hf"; }
  int32_t vocab_size() const override { return pipeline_.vocab_size(); }
  int32_t eos_id() const override { return eos_; }

  std::vector<int32_t> encode(std::string_view text) const override {
    return pipeline_.encode(text, /*add_special=*/false);
  }
  std::vector<int32_t> encode_with_special(std::string_view text) const override {
    if (!add_bos_ && !add_eos_) return pipeline_.encode(text, /*add_special=*/true);
    std::vector<int32_t> ids;
    if (*add_bos_ && bos_ >= 0) ids.push_back(bos_);
    const std::vector<int32_t> body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    if (*add_eos_ && eos_ >= 0) ids.push_back(eos_);
    return ids;
  }
  void decode_append(int32_t id, DecodeState& state, std::string& out) const override {
    pipeline_.decode_append(id, state, out);
  }
  std::vector<SavedFile> files_to_save() const override {
    std::vector<SavedFile> files{{"tokenizer", "tokenizer.json", json_}};
    if (!config_.empty()) files.push_back({"config", "tokenizer_config.json", config_});
    return files;
  }

 private:
  void read_config(const std::string& where) {
    const std::string cwhere = where + " (tokenizer_config.json)";
    const hf::Json c = hf::Json::parse(config_, nullptr, /*allow_exceptions=*/false);
    check(!c.is_discarded() && c.is_object(), cwhere, " is not a JSON object");
    auto id_of = [&](const char* key) {
      const std::string name = token_name(c, key, cwhere);
      if (name.empty()) return -1;
      const int32_t id = pipeline_.token_id(name);
      check(id >= 0, cwhere, ": ", key, " \"", name, "\" is not a token of tokenizer.json");
      return id;
    };
    bos_ = id_of("bos_token");
    if (const int32_t e = id_of("eos_token"); e >= 0) eos_ = e;
    for (auto [key, flag] : {std::pair{"add_bos_token", &add_bos_}, {"add_eos_token", &add_eos_}}) {
      const hf::Json* v = hf::field(c, key);
      if (!v) continue;
      check(v->is_boolean(), cwhere, ": ", key, " must be true or false");
      *flag = v->get<bool>();
    }
    if (!add_bos_ && !add_eos_) return;  // the post-processor decides
    if (!add_bos_) add_bos_ = true;      // transformers' defaults for the key not given
    if (!add_eos_) add_eos_ = false;
    check(!*add_bos_ || bos_ >= 0, cwhere, ": add_bos_token is true but bos_token is not set");
    check(!*add_eos_ || eos_ >= 0, cwhere, ": add_eos_token is true but eos_token is not set");
  }

  std::string json_, config_;
  hf::Pipeline pipeline_;
  int32_t eos_ = -1, bos_ = -1;
  std::optional<bool> add_bos_, add_eos_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_hf_tokenizer(std::string tokenizer_json, std::string config_json,
                                             const std::string& where) {
  return std::make_unique<HfTokenizer>(std::move(tokenizer_json), std::move(config_json), where);
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  std::error_code ec;
  std::string file = path, config;
  if (fs::is_directory(path, ec)) {
    file = (fs::path(path) / "tokenizer.json").string();
    const std::string cfg = (fs::path(path) / "tokenizer_config.json").string();
    if (fs::is_regular_file(cfg, ec)) config = read_file_text(cfg);
  }
  check(fs::is_regular_file(file, ec), "Hugging Face tokenizer file not found: ", file);
  return make_hf_tokenizer(read_file_text(file), std::move(config), file);
}

}  // namespace difftx
