#include "io/gguf_writer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"

namespace fs = std::filesystem;

namespace difftx {
using json = nlohmann::json;

namespace {

constexpr uint64_t kAlignment = 32;  // GGUF's default general.alignment

class GgufBuffer {
 public:
  std::vector<uint8_t> bytes;
  template <class T>
  void pod(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));  // little-endian host (x86-64)
  }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void pad() { bytes.resize((bytes.size() + kAlignment - 1) / kAlignment * kAlignment, 0); }
};

// Metadata, kept in insertion order; each entry is its key's bytes and its typed value.
class GgufMetadata {
 public:
  size_t count = 0;
  GgufBuffer b;
  void key(const std::string& k, GgufType t) {
    ++count;
    b.str(k);
    b.pod<uint32_t>(t);
  }
  void u32(const std::string& k, uint64_t v) {
    check(v <= 0xffffffffu, "GGUF: ", k, " = ", v, " does not fit in 32 bits");
    key(k, kGgufU32);
    b.pod<uint32_t>(static_cast<uint32_t>(v));
  }
  void f32(const std::string& k, double v) {
    key(k, kGgufF32);
    b.pod<float>(static_cast<float>(v));
  }
  void boolean(const std::string& k, bool v) {
    key(k, kGgufBool);
    b.pod<uint8_t>(v ? 1 : 0);
  }
  void str(const std::string& k, const std::string& v) {
    key(k, kGgufString);
    b.str(v);
  }
  void strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, kGgufArray);
    b.pod<uint32_t>(kGgufString);
    b.pod<uint64_t>(v.size());
    for (const auto& s : v) b.str(s);
  }
  void i32s(const std::string& k, const std::vector<int32_t>& v) {
    key(k, kGgufArray);
    b.pod<uint32_t>(kGgufI32);
    b.pod<uint64_t>(v.size());
    for (int32_t x : v) b.pod<int32_t>(x);
  }
};

// llama.cpp token types (llama_token_type).
constexpr int32_t kTokenNormal = 1, kTokenControl = 3, kTokenUserDefined = 4;

struct GgufVocab {
  std::string model = "no_vocab", pre, note;
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  int64_t bos = -1, eos = -1;
  bool add_bos = false;
};

// Vocabulary [id -> token] from a JSON object token -> id covering 0..n-1 exactly.
std::vector<std::string> vocab_by_id(const json& vocab, const std::string& where) {
  check(vocab.is_object() && !vocab.empty(), where, ": vocab must be a non-empty object token -> id");
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [tok, id] : vocab.items()) {
    check(id.is_number_unsigned() && id.get<uint64_t>() < vocab.size(), where, ": token ", tok,
          " has an id outside 0..", vocab.size() - 1);
    const size_t i = id.get<size_t>();
    check(!seen[i], where, ": id ", i, " is given twice");
    seen[i] = true;
    tokens[i] = tok;
  }
  return tokens;
}

int64_t json_id(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return -1;
  const json& v = cfg[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();
  return -1;
}

GgufVocab hf_tokenizer_vocab(const fs::path& path) {
  GgufVocab v;
  const std::string where = path.string();
  json t;
  try {
    t = json::parse(read_file_text(where));
  } catch (const json::exception& e) {
    throw Error(where + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  const json& model = t.contains("model") ? t["model"] : json();
  if (!model.is_object() || model.value("type", "") != "BPE" || model.value("byte_fallback", false)) {
    v.note = "tokenizer.json is not byte-level BPE (only GPT-2 / Llama-3 style tokenizers are exported); wrote no vocabulary";
    return v;
  }
  v.model = "gpt2";
  v.tokens = vocab_by_id(model["vocab"], where + ": model");
  v.types.assign(v.tokens.size(), kTokenNormal);
  if (model.contains("merges") && model["merges"].is_array())
    for (const json& m : model["merges"]) {
      if (m.is_string()) v.merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        v.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else throw Error(where + ": a merges entry is neither \"a b\" nor [\"a\", \"b\"]");
    }
  if (t.contains("added_tokens") && t["added_tokens"].is_array())
    for (const json& a : t["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() || !a.contains("content") ||
          !a["content"].is_string())
        throw Error(where + ": an added_tokens entry lacks an id or content");
      const size_t id = a["id"].get<size_t>();
      check(id < (1u << 24), where, ": added token id ", id, " is implausibly large");
      if (id >= v.tokens.size()) {
        v.tokens.resize(id + 1, "");
        v.types.resize(id + 1, kTokenUserDefined);
      }
      v.tokens[id] = a["content"].get<std::string>();
      v.types[id] = a.value("special", false) ? kTokenControl : kTokenUserDefined;
    }
  // Llama-3 splits with a regex before ByteLevel; GPT-2 uses ByteLevel alone.
  const std::string pre = t.contains("pre_tokenizer") ? t["pre_tokenizer"].dump() : "";
  v.pre = pre.find("\"Split\"") != std::string::npos ? "llama-bpe" : "gpt-2";
  v.note = "tokenizer.json (byte-level BPE, " + std::to_string(v.tokens.size()) + " tokens, pre " + v.pre + ")";
  return v;
}

GgufVocab difftx_gpt2_vocab(const fs::path& dir) {
  GgufVocab v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  const std::string enc = (dir / "encoder.json").string();
  json e;
  try {
    e = json::parse(read_file_text(enc));
  } catch (const json::exception& ex) {
    throw Error(enc + ": invalid JSON (" + std::string(ex.what()) + ")");
  }
  v.tokens = vocab_by_id(e, enc);
  v.types.assign(v.tokens.size(), kTokenNormal);
  const std::string bpe = read_file_text((dir / "vocab.bpe").string());
  size_t pos = 0;
  while (pos < bpe.size()) {
    size_t end = bpe.find('\n', pos);
    if (end == std::string::npos) end = bpe.size();
    const std::string line = bpe.substr(pos, end - pos);
    if (!line.empty() && line.rfind("#version", 0) != 0) v.merges.push_back(line);
    pos = end + 1;
  }
  v.eos = v.bos = static_cast<int64_t>(v.tokens.size()) - 1;  // <|endoftext|>, 50256 in GPT-2
  if (v.tokens.back() == "<|endoftext|>") v.types.back() = kTokenControl;
  v.note = "GPT-2 BPE (encoder.json + vocab.bpe)";
  return v;
}

GgufVocab model_vocab(const std::string& model_dir, int64_t vocab_size) {
  const fs::path dir(model_dir);
  std::error_code ec;
  GgufVocab v;
  if (fs::is_regular_file(dir / "tokenizer.json", ec)) v = hf_tokenizer_vocab(dir / "tokenizer.json");
  else if (fs::is_regular_file(dir / "encoder.json", ec) && fs::is_regular_file(dir / "vocab.bpe", ec))
    v = difftx_gpt2_vocab(dir);
  else
    v.note = "no tokenizer llama.cpp can use in " + model_dir + "; wrote no vocabulary";
  if (v.model == "no_vocab") return v;
  check(static_cast<int64_t>(v.tokens.size()) <= vocab_size, model_dir, ": the tokenizer has ",
        v.tokens.size(), " tokens but the model's vocab_size is ", vocab_size);
  // llama.cpp wants one token per embedding row: pad as its converter does.
  for (int64_t i = static_cast<int64_t>(v.tokens.size()); i < vocab_size; ++i) {
    v.tokens.push_back("[PAD" + std::to_string(i) + "]");
    v.types.push_back(kTokenUserDefined);
  }
  // bos/eos: config.json's, then tokenizer_config.json's added tokens by name.
  const json cfg = json::parse(read_file_text((dir / "config.json").string()), nullptr, false);
  if (cfg.is_object()) {
    if (json_id(cfg, "bos_token_id") >= 0) v.bos = json_id(cfg, "bos_token_id");
    if (json_id(cfg, "eos_token_id") >= 0) v.eos = json_id(cfg, "eos_token_id");
  }
  if (fs::is_regular_file(dir / "tokenizer_config.json", ec)) {
    const json tc = json::parse(read_file_text((dir / "tokenizer_config.json").string()), nullptr, false);
    if (tc.is_object() && tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean())
      v.add_bos = tc["add_bos_token"].get<bool>();
    else if (v.pre == "llama-bpe")
      v.add_bos = true;  // Llama-3's post-processor adds <|begin_of_text|>
    // "bos_token": "<s>" or {"content": "<s>", ...}: the id of that token.
    auto id_of = [&](const char* key) -> int64_t {
      if (!tc.is_object() || !tc.contains(key)) return -1;
      const json& t = tc[key];
      const std::string text = t.is_string() ? t.get<std::string>()
                               : t.is_object() && t.contains("content") && t["content"].is_string()
                                   ? t["content"].get<std::string>()
                                   : std::string();
      for (size_t i = 0; i < v.tokens.size() && !text.empty(); ++i)
        if (v.tokens[i] == text) return static_cast<int64_t>(i);
      return -1;
    };
    if (v.bos < 0) v.bos = id_of("bos_token");
    if (v.eos < 0) v.eos = id_of("eos_token");
  }
  return v;
}

// llama.cpp's name of a SPEC tensor.
std::string gguf_name(const std::string& n) {
  if (n == "model.embed_tokens.weight") return "token_embd.weight";
  if (n == "model.norm.weight") return "output_norm.weight";
  if (n == "lm_head.weight") return "output.weight";
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},   {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},     {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  const std::string pre = "model.layers.";
  check(n.rfind(pre, 0) == 0, "GGUF: no llama.cpp name for tensor ", n);
  const size_t dot = n.find('.', pre.size());
  const std::string layer = n.substr(pre.size(), dot - pre.size()), rest = n.substr(dot + 1);
  for (const auto& [from, to] : kLayer)
    if (rest == from) return "blk." + layer + "." + to;
  throw Error("GGUF: no llama.cpp name for tensor " + n);
}

struct GgufTensor {
  std::string name;
  std::vector<int64_t> shape;  // row-major, as in safetensors
  std::vector<float> data;
  GgmlType type;
};

void append_data(std::vector<uint8_t>& out, const GgufTensor& t) {
  const size_t n = t.data.size();
  if (t.type == kGgmlF32) {
    const size_t at = out.size();
    out.resize(at + 4 * n);
    if (n) std::memcpy(out.data() + at, t.data.data(), 4 * n);
    return;
  }
  out.reserve(out.size() + 2 * n);
  for (size_t i = 0; i < n; ++i) {
    const float x = t.data[i];
    const uint16_t b = t.type == kGgmlBF16 ? float_to_bf16(x) : float_to_f16(x);
    if (t.type == kGgmlF16 && std::isfinite(x) && (b & 0x7c00u) == 0x7c00u)
      throw Error("tensor " + t.name + " holds " + std::to_string(x) +
                  ", beyond F16's range (65504); convert with --dtype bf16 or f32");
    out.push_back(static_cast<uint8_t>(b));
    out.push_back(static_cast<uint8_t>(b >> 8));
  }
}

}  // namespace

std::string write_gguf(const std::string& path, const Model& m, const std::string& model_dir, DType dtype) {
  const Config& c = m.config;
  if (c.model_type != ModelType::kLlama)
    throw Error("convert --to gguf is for llama models: llama.cpp has no differential attention (model_type "
                "in config.json is not \"llama\"); convert --to hf for transformers instead");
  if (c.attention_groupnorm)
    throw Error("config.json key \"attention_groupnorm\" is true: llama.cpp's llama has no per-head norm");
  for (const auto& [on, key] : {std::pair{c.ext.enhancer_reduction.has_value(), "ext_token_enhancer"},
                                std::pair{c.ext.noise_threshold.has_value(), "ext_noise_reduction"},
                                std::pair{c.ext.flow_gate, "ext_flow_gate"}})
    if (on)
      throw Error(std::string("config.json key \"") + key +
                  "\" is set: llama.cpp's llama has no such step (convert --to difftx keeps it)");
  const int64_t d = c.head_dim;

  std::vector<GgufTensor> tensors;
  const GgmlType mat = dtype == DType::kF32 ? kGgmlF32 : dtype == DType::kBF16 ? kGgmlBF16 : kGgmlF16;
  for (const TensorSpec& t : m.layout.tensors) {
    GgufTensor g{gguf_name(t.name), t.shape, std::vector<float>(m.at(t.offset), m.at(t.offset) + t.numel),
                 t.shape.size() == 1 ? kGgmlF32 : mat};
    const bool q = t.name.find(".q_proj.") != std::string::npos, k = t.name.find(".k_proj.") != std::string::npos;
    if ((q || k) && !c.rope_interleaved) {
      // rotate_half pairs (i, i + d/2) -> llama.cpp's pairs (2i, 2i + 1), per sub-head.
      const int64_t C = t.shape[1], heads = t.shape[0] / d;
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t r = 0; r < d; ++r) {
          const int64_t src = h * d + (r % 2 == 0 ? r / 2 : r / 2 + d / 2);
          std::memcpy(g.data.data() + (h * d + r) * C, m.at(t.offset) + src * C, sizeof(float) * C);
        }
    }
    tensors.push_back(std::move(g));
  }
  if (c.rope_scaling.type == RopeType::kLlama3) {
    // llama.cpp divides each pair's frequency by its rope_freqs factor.
    Config plain = c;
    plain.rope_scaling = RopeScaling{};
    const auto base = rope_inverse_frequencies(plain), scaled = rope_inverse_frequencies(c);
    GgufTensor f{"rope_freqs.weight", {d / 2}, std::vector<float>(static_cast<size_t>(d / 2)), kGgmlF32};
    for (size_t i = 0; i < f.data.size(); ++i) f.data[i] = static_cast<float>(base[i] / scaled[i]);
    tensors.push_back(std::move(f));
  }

  GgufMetadata kv;
  kv.str("general.architecture", "llama");
  fs::path name = fs::path(model_dir).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();  // "dir/"
  kv.str("general.name", name.filename().string());
  kv.u32("general.file_type", dtype == DType::kF32 ? 0 : dtype == DType::kF16 ? 1 : 32);
  kv.u32("llama.vocab_size", static_cast<uint64_t>(c.vocab_size));
  kv.u32("llama.context_length", static_cast<uint64_t>(c.max_position_embeddings));
  kv.u32("llama.embedding_length", static_cast<uint64_t>(c.hidden_size));
  kv.u32("llama.block_count", static_cast<uint64_t>(c.num_hidden_layers));
  kv.u32("llama.feed_forward_length", static_cast<uint64_t>(c.intermediate_size));
  kv.u32("llama.rope.dimension_count", static_cast<uint64_t>(d));
  kv.u32("llama.attention.head_count", static_cast<uint64_t>(c.num_attention_heads));
  kv.u32("llama.attention.head_count_kv", static_cast<uint64_t>(c.num_key_value_heads));
  kv.u32("llama.attention.key_length", static_cast<uint64_t>(d));
  kv.u32("llama.attention.value_length", static_cast<uint64_t>(d));
  kv.f32("llama.attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  kv.f32("llama.rope.freq_base", c.rope_theta);
  if (c.rope_scaling.type == RopeType::kLinear) {
    kv.str("llama.rope.scaling.type", "linear");
    kv.f32("llama.rope.scaling.factor", c.rope_scaling.factor);
  }
  const GgufVocab v = model_vocab(model_dir, c.vocab_size);
  kv.str("tokenizer.ggml.model", v.model);
  if (v.model != "no_vocab") {
    kv.str("tokenizer.ggml.pre", v.pre);
    kv.strings("tokenizer.ggml.tokens", v.tokens);
    kv.i32s("tokenizer.ggml.token_type", v.types);
    kv.strings("tokenizer.ggml.merges", v.merges);
    if (v.bos >= 0) kv.u32("tokenizer.ggml.bos_token_id", static_cast<uint64_t>(v.bos));
    if (v.eos >= 0) kv.u32("tokenizer.ggml.eos_token_id", static_cast<uint64_t>(v.eos));
    kv.boolean("tokenizer.ggml.add_bos_token", v.add_bos);
  }

  GgufBuffer out;
  out.pod<uint32_t>(0x46554747u);  // "GGUF"
  out.pod<uint32_t>(3);
  out.pod<uint64_t>(tensors.size());
  out.pod<uint64_t>(kv.count);
  out.bytes.insert(out.bytes.end(), kv.b.bytes.begin(), kv.b.bytes.end());
  uint64_t offset = 0;
  for (const GgufTensor& t : tensors) {
    out.str(t.name);
    out.pod<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (size_t i = t.shape.size(); i-- > 0;) out.pod<uint64_t>(static_cast<uint64_t>(t.shape[i]));  // ne[0] innermost
    out.pod<uint32_t>(t.type);
    out.pod<uint64_t>(offset);
    const uint64_t bytes = t.data.size() * (t.type == kGgmlF32 ? 4 : 2);
    offset += (bytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  out.pad();
  for (const GgufTensor& t : tensors) {
    append_data(out.bytes, t);
    out.pad();
  }
  write_file_atomic(path, out.bytes.data(), out.bytes.size());
  return v.note;
}

}  // namespace difftx
