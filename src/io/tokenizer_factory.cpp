// What every tokenizer shares: decode loop, fingerprint, saving into a model directory and
// loading back from its descriptor, the spec parser and the streaming decoder.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/tokenizer.h"
#include "io/utf8_stream.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

constexpr const char* kDescriptor = "difftx_tokenizer.json";
constexpr const char* kFormat = "difftx-tokenizer";

struct Fnv1a64 {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(std::string_view s) {
    for (const char c : s) {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ull;
    }
  }
  void add_u64(uint64_t v) {
    for (int k = 0; k < 8; ++k) {
      h ^= (v >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  }
};

// A plain file name inside the model directory (no folders, nothing that leaves it).
bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string Tokenizer::decode(const int32_t* ids, size_t n) const {
  std::string out;
  DecodeState state;
  for (size_t i = 0; i < n; ++i) decode_append(ids[i], state, out);
  return out;
}

std::string Tokenizer::describe() const {
  return kind() + " (" + std::to_string(vocab_size()) + " tokens)";
}

std::string Tokenizer::fingerprint() const {
  Fnv1a64 h;
  const std::string k = kind();
  h.add_u64(k.size());
  h.add(k);
  for (const SavedFile& f : files_to_save()) {
    h.add_u64(f.role.size());
    h.add(f.role);
    h.add_u64(f.bytes.size());
    h.add(f.bytes);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.h));
  return k + "-" + hex;
}

void Tokenizer::save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create directory " + dir + ": " + ec.message());
  nlohmann::json files = nlohmann::json::object();
  for (const SavedFile& f : files_to_save()) {
    write_file_atomic((fs::path(dir) / f.name).string(), f.bytes.data(), f.bytes.size());
    files[f.role] = f.name;
  }
  // The descriptor last: a difftx_tokenizer.json only ever describes files that are complete.
  const nlohmann::json desc{{"format", kFormat},         {"version", 1},
                            {"type", kind()},            {"files", files},
                            {"vocab_size", vocab_size()}, {"eos_id", eos_id()},
                            {"fingerprint", fingerprint()}};
  write_file_atomic((fs::path(dir) / kDescriptor).string(), desc.dump(2) + "\n");
}

std::string default_gpt2_dir() {
  const char* cache = std::getenv("DIFFTX_CACHE");
  if (cache && *cache) return (fs::path(cache) / "gpt2").string();
  return "cache/gpt2";
}

namespace {
bool has_descriptor(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / kDescriptor, ec);
}
bool has_hf_tokenizer(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "tokenizer.json", ec);
}
}  // namespace

bool has_tokenizer(const std::string& model_dir) {
  return has_descriptor(model_dir) || has_hf_tokenizer(model_dir);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  const std::string path = (fs::path(model_dir) / kDescriptor).string();
  if (!has_descriptor(model_dir) && has_hf_tokenizer(model_dir)) return load_hf_tokenizer(model_dir);
  if (!has_descriptor(model_dir))
    throw Error("no tokenizer in " + model_dir + " (" + path + " and tokenizer.json are missing)");
  const auto j = nlohmann::json::parse(read_file_text(path), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(path + " is not a JSON object");
  // Types are checked before any get<>, so a wrong type is this file's error, never a JSON
  // library exception.
  if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != kFormat) {
    if (j.contains("model") && j.contains("added_tokens"))
      throw Error(path + " is a Hugging Face tokenizer file, not a difftx tokenizer descriptor");
    throw Error(path + " is not a difftx tokenizer descriptor (no \"format\": \"" + kFormat +
                "\")");
  }
  if (!j.contains("type") || !j["type"].is_string())
    throw Error(path + ": missing \"type\" (byte, gpt2 or sentencepiece)");
  const std::string type = j["type"].get<std::string>();
  const nlohmann::json files = j.value("files", nlohmann::json::object());
  auto file = [&](const char* role) {
    if (!files.is_object() || !files.contains(role) || !files[role].is_string())
      throw Error(path + ": missing \"files\": {\"" + role + "\": ...} for the " + type +
                  " tokenizer");
    const std::string name = files[role].get<std::string>();
    if (!plain_file_name(name))
      throw Error(path + ": file name \"" + name + "\" must be a plain name inside " + model_dir);
    return (fs::path(model_dir) / name).string();
  };
  std::unique_ptr<Tokenizer> tok;
  if (type == "byte") {
    tok = make_byte_tokenizer();
  } else if (type == "gpt2") {
    tok = load_gpt2_tokenizer(file("encoder"), file("merges"));
  } else if (type == "sentencepiece") {
    tok = load_sentencepiece_tokenizer(file("model"));
  } else if (type == "hf") {
    const std::string json_path = file("tokenizer");
    std::string config;
    if (files.is_object() && files.contains("config")) config = read_file_text(file("config"));
    tok = make_hf_tokenizer(read_file_text(json_path), std::move(config), json_path);
  } else {
    throw Error(path + ": unknown tokenizer type \"" + type +
                "\" (expected byte, gpt2, sentencepiece or hf)");
  }
  if (j.contains("fingerprint") && j["fingerprint"].is_string() &&
      j["fingerprint"].get<std::string>() != tok->fingerprint())
    throw Error("the tokenizer files in " + model_dir + " do not match " + path +
                " (fingerprint " + tok->fingerprint() + ", descriptor says " +
                j["fingerprint"].get<std::string>() + "); the directory is damaged");
  if (j.contains("vocab_size") && j["vocab_size"].is_number_integer() &&
      j["vocab_size"].get<int64_t>() != tok->vocab_size())
    throw Error(path + " says vocab_size " + std::to_string(j["vocab_size"].get<int64_t>()) +
                " but the tokenizer files have " + std::to_string(tok->vocab_size()));
  return tok;
}

std::unique_ptr<Tokenizer> make_tokenizer(std::string_view spec) {
  const std::string s(spec);
  if (s == "byte") return make_byte_tokenizer();
  if (s == "gpt2" || starts_with(s, "gpt2:")) {
    const std::string dir = s == "gpt2" ? default_gpt2_dir() : s.substr(5);
    if (dir.empty()) throw Error("tokenizer gpt2:DIR needs a directory", "tokenizer");
    std::error_code ec;
    if (!fs::is_regular_file(fs::path(dir) / "encoder.json", ec) ||
        !fs::is_regular_file(fs::path(dir) / "vocab.bpe", ec))
      throw Error("GPT-2 tokenizer files not found: " + dir +
                  "/encoder.json and vocab.bpe are needed (run scripts/fetch-data.sh, which puts "
                  "them in cache/gpt2, or give gpt2:DIR)");
    return load_gpt2_tokenizer(dir);
  }
  for (const std::string_view prefix : {"spm:", "sentencepiece:"}) {
    if (!starts_with(s, prefix)) continue;
    std::string path = s.substr(prefix.size());
    if (path.empty()) throw Error("tokenizer spm:FILE.model needs a file", "tokenizer");
    std::error_code ec;
    if (fs::is_directory(path, ec)) path = (fs::path(path) / "tokenizer.model").string();
    return load_sentencepiece_tokenizer(path);
  }
  if (starts_with(s, "hf:")) return load_hf_tokenizer(s.substr(3));
  std::error_code ec;
  if (!s.empty() && fs::is_directory(s, ec) && has_tokenizer(s)) return load_tokenizer(s);
  if (s.size() > 5 && s.substr(s.size() - 5) == ".json" && fs::is_regular_file(s, ec))
    return load_hf_tokenizer(s);
  throw Error("unknown tokenizer \"" + s +
              "\": expected byte, gpt2, gpt2:DIR, spm:FILE.model, a Hugging Face tokenizer.json, "
              "or a directory holding a difftx_tokenizer.json or tokenizer.json");
}

// ---- StreamingDecoder ------------------------------------------------------------------------

std::string StreamingDecoder::push(int32_t id) {
  bytes_.clear();
  tokenizer_.decode_append(id, state_, bytes_);
  return stream_.push(bytes_);
}

std::string StreamingDecoder::finish() {
  state_ = DecodeState{};
  return stream_.finish();
}

void StreamingDecoder::reset() {
  stream_ = utf8::Utf8Stream{};
  state_ = DecodeState{};
}

}  // namespace difftx
