// convert --to gguf: the file is read back by a GGUF v3 reader written here from the format's
// description (ggml's docs/gguf.md), its hyperparameters and tokenizer checked, and a model
// rebuilt from its tensors alone (llama.cpp's names and GPT-J rotary pairs) gives the logits of
// the source model.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <variant>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/gguf_writer.h"
#include "io/hf_convert.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test_util.h"

namespace difftx {
namespace {
namespace fs = std::filesystem;

// ---- a GGUF v3 reader -------------------------------------------------------------------------

using GgufValue = std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<std::string>,
                               std::vector<int64_t>>;

struct GgufTensorInfo {
  std::vector<uint64_t> ne;  // ne[0] innermost
  uint32_t type = 0;
  uint64_t offset = 0;
};

struct Gguf {
  uint32_t version = 0;
  std::map<std::string, GgufValue> kv;
  std::vector<std::string> kv_order;
  std::map<std::string, GgufTensorInfo> tensors;
  std::vector<uint8_t> bytes;
  size_t data_start = 0;

  std::vector<float> floats(const std::string& name) const {
    const GgufTensorInfo& t = tensors.at(name);
    size_t n = 1;
    for (uint64_t e : t.ne) n *= e;
    std::vector<float> out(n);
    const uint8_t* p = bytes.data() + data_start + t.offset;
    for (size_t i = 0; i < n; ++i) {
      if (t.type == kGgmlF32) std::memcpy(&out[i], p + 4 * i, 4);
      else {
        const uint16_t b = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
        out[i] = t.type == kGgmlF16 ? f16_to_float(b) : bf16_to_float(b);
      }
    }
    return out;
  }
  uint64_t u(const std::string& k) const { return std::get<uint64_t>(kv.at(k)); }
  double f(const std::string& k) const { return std::get<double>(kv.at(k)); }
  const std::string& s(const std::string& k) const { return std::get<std::string>(kv.at(k)); }
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  template <class T>
  T pod() {
    if (at_ + sizeof(T) > b_.size()) throw std::runtime_error("GGUF: truncated");
    T v;
    std::memcpy(&v, b_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = pod<uint64_t>();
    if (at_ + n > b_.size()) throw std::runtime_error("GGUF: truncated string");
    std::string s(reinterpret_cast<const char*>(b_.data() + at_), n);
    at_ += n;
    return s;
  }
  GgufValue scalar(uint32_t t) {
    switch (t) {
      case kGgufU8: return uint64_t{pod<uint8_t>()};
      case kGgufU16: return uint64_t{pod<uint16_t>()};
      case kGgufU32: return uint64_t{pod<uint32_t>()};
      case kGgufU64: return pod<uint64_t>();
      case kGgufI8: return int64_t{pod<int8_t>()};
      case kGgufI16: return int64_t{pod<int16_t>()};
      case kGgufI32: return int64_t{pod<int32_t>()};
      case kGgufI64: return pod<int64_t>();
      case kGgufF32: return double{pod<float>()};
      case kGgufF64: return pod<double>();
      case kGgufBool: return pod<uint8_t>() != 0;
      case kGgufString: return str();
    }
    throw std::runtime_error("GGUF: unknown value type " + std::to_string(t));
  }
  GgufValue value(uint32_t t) {
    if (t != kGgufArray) return scalar(t);
    const uint32_t et = pod<uint32_t>();
    const uint64_t n = pod<uint64_t>();
    if (et == kGgufString) {
      std::vector<std::string> v;
      for (uint64_t i = 0; i < n; ++i) v.push_back(str());
      return v;
    }
    std::vector<int64_t> v;
    for (uint64_t i = 0; i < n; ++i) {
      const GgufValue x = scalar(et);
      v.push_back(std::holds_alternative<int64_t>(x) ? std::get<int64_t>(x)
                                                      : static_cast<int64_t>(std::get<uint64_t>(x)));
    }
    return v;
  }
  size_t at() const { return at_; }

 private:
  const std::vector<uint8_t>& b_;
  size_t at_ = 0;
};

Gguf read_gguf(const std::string& path) {
  Gguf g;
  g.bytes = read_file_bytes(path);
  Reader r(g.bytes);
  if (r.pod<uint32_t>() != 0x46554747u) throw std::runtime_error("not GGUF");
  g.version = r.pod<uint32_t>();
  const uint64_t n_tensors = r.pod<uint64_t>(), n_kv = r.pod<uint64_t>();
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string k = r.str();
    if (g.kv.count(k)) throw std::runtime_error("GGUF: duplicate key " + k);
    g.kv[k] = r.value(r.pod<uint32_t>());
    g.kv_order.push_back(k);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string name = r.str();
    GgufTensorInfo t;
    const uint32_t nd = r.pod<uint32_t>();
    for (uint32_t d = 0; d < nd; ++d) t.ne.push_back(r.pod<uint64_t>());
    t.type = r.pod<uint32_t>();
    t.offset = r.pod<uint64_t>();
    g.tensors[name] = t;
  }
  const uint64_t align = g.kv.count("general.alignment") ? g.u("general.alignment") : 32;
  g.data_start = (r.at() + align - 1) / align * align;
  return g;
}

// ---- tests -------------------------------------------------------------------------------------

// A byte-level BPE tokenizer.json in Llama-3's shape (Split + ByteLevel, special added tokens).
const char* kTokenizerJson = R"({
  "version": "1.0",
  "added_tokens": [{"id": 6, "content": "<|begin_of_text|>", "special": true},
                   {"id": 7, "content": "<|end_of_text|>", "special": true}],
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Isolated"},
      {"type": "ByteLevel", "add_prefix_space": false}]},
  "model": {"type": "BPE", "ignore_merges": true, "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "Ġ": 5},
            "merges": [["a", "b"], "ab c"]}
})";

void make_llama(const fs::path& dir, const std::string& extra, uint64_t seed) {
  const Config c = parse_config(R"({"model_type": "llama", "vocab_size": 12, "hidden_size": 16,
      "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "head_dim": 8, "rope_theta": 100.0)" + extra + "}", "gguf test");
  Model m(c);
  init_parameters(m, seed);
  Rng rng(seed);
  for (const auto& t : m.layout.tensors)
    for (size_t i = 0; i < t.numel; ++i)
      m.at(t.offset)[i] = static_cast<float>(t.kind == ParamKind::kNorm ? 1 + 0.3 * rng.normal() : 0.3 * rng.normal());
  save_new_model(dir.string(), m);
  write_file_atomic((dir / "tokenizer.json").string(), kTokenizerJson);
  write_file_atomic((dir / "tokenizer_config.json").string(), R"({"add_bos_token": true,
      "bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|end_of_text|>"}})");
}

// The model llama.cpp would build: its tensors by name, GPT-J rotary pairs, the file's sizes.
std::unique_ptr<Model> model_from_gguf(const Gguf& g, const Config& source) {
  Config c = source;  // rope scaling is checked separately (rope_freqs / scaling keys)
  c.hidden_size = static_cast<int64_t>(g.u("llama.embedding_length"));
  c.num_hidden_layers = static_cast<int64_t>(g.u("llama.block_count"));
  c.intermediate_size = static_cast<int64_t>(g.u("llama.feed_forward_length"));
  c.num_attention_heads = static_cast<int64_t>(g.u("llama.attention.head_count"));
  c.num_key_value_heads = static_cast<int64_t>(g.u("llama.attention.head_count_kv"));
  c.head_dim = static_cast<int64_t>(g.u("llama.attention.key_length"));
  c.rope_theta = g.f("llama.rope.freq_base");
  c.rms_norm_eps = g.f("llama.attention.layer_norm_rms_epsilon");
  c.rope_interleaved = true;  // llama.cpp's LLAMA rope: pairs (2i, 2i+1)
  c.tie_word_embeddings = !g.tensors.count("output.weight");
  auto m = std::make_unique<Model>(c);
  const std::map<std::string, std::string> names{
      {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"}, {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"}, {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  for (const auto& t : m->layout.tensors) {
    std::string gn;
    if (t.name == "model.embed_tokens.weight") gn = "token_embd.weight";
    else if (t.name == "model.norm.weight") gn = "output_norm.weight";
    else if (t.name == "lm_head.weight") gn = "output.weight";
    else {
      const size_t dot = t.name.find('.', 13);
      gn = "blk." + t.name.substr(13, dot - 13) + "." + names.at(t.name.substr(dot + 1));
    }
    const GgufTensorInfo& info = g.tensors.at(gn);
    std::vector<uint64_t> want(t.shape.rbegin(), t.shape.rend());
    EXPECT_EQ(info.ne, want) << gn;
    EXPECT_EQ(info.offset % 32, 0u) << gn;
    const auto v = g.floats(gn);
    std::copy(v.begin(), v.end(), m->at(t.offset));
  }
  return m;
}

std::vector<float> logits(const Model& m) {
  const std::vector<int32_t> tok{6, 0, 1, 2, 3, 4, 5, 11, 9, 3};
  Activations a;
  RunOptions opts;
  forward(m, tok.data(), nullptr, 1, static_cast<int64_t>(tok.size()), a, opts);
  return a.logits;
}

TEST(Gguf, ReadBackGivesTheSourceLogitsHyperparametersAndTokenizer) {
  for (const bool interleaved : {false, true}) {
    SCOPED_TRACE(interleaved ? "GPT-J pairs in the source" : "rotate_half pairs in the source");
    test::TempDir tmp;
    const fs::path src = tmp.path() / "m", out = tmp.path() / "m.gguf";
    make_llama(src, std::string(", \"rope_interleaved\": ") + (interleaved ? "true" : "false"), 21);
    ConvertOptions o;
    o.to = ConvertTarget::kGguf;
    const std::string summary = convert_model(src.string(), out.string(), o);
    EXPECT_NE(summary.find("tokenizer.json"), std::string::npos) << summary;
    const Gguf g = read_gguf(out.string());
    EXPECT_EQ(g.version, 3u);
    EXPECT_EQ(g.s("general.architecture"), "llama");
    EXPECT_EQ(g.u("general.file_type"), 0u);
    EXPECT_EQ(g.u("llama.vocab_size"), 12u);
    EXPECT_EQ(g.u("llama.rope.dimension_count"), 8u);
    EXPECT_EQ(g.u("llama.context_length"), 2048u);
    EXPECT_FLOAT_EQ(static_cast<float>(g.f("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
    EXPECT_EQ(g.s("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(g.s("tokenizer.ggml.pre"), "llama-bpe");
    const auto& tokens = std::get<std::vector<std::string>>(g.kv.at("tokenizer.ggml.tokens"));
    ASSERT_EQ(tokens.size(), 12u);  // padded to vocab_size
    EXPECT_EQ(tokens[3], "ab");
    EXPECT_EQ(tokens[6], "<|begin_of_text|>");
    EXPECT_EQ(std::get<std::vector<int64_t>>(g.kv.at("tokenizer.ggml.token_type"))[7], 3);  // control
    EXPECT_EQ(std::get<std::vector<std::string>>(g.kv.at("tokenizer.ggml.merges")),
              (std::vector<std::string>{"a b", "ab c"}));
    EXPECT_EQ(g.u("tokenizer.ggml.bos_token_id"), 6u);
    EXPECT_EQ(g.u("tokenizer.ggml.eos_token_id"), 7u);
    EXPECT_TRUE(std::get<bool>(g.kv.at("tokenizer.ggml.add_bos_token")));

    const auto source = load_model(src.string());
    const auto rebuilt = model_from_gguf(g, source->config);
    const auto a = logits(*source), b = logits(*rebuilt);
    EXPECT_LT(test::max_rel_error(b.data(), a.data(), a.size()), 1e-6);
  }
}

TEST(Gguf, RopeScalingAndHalfPrecision) {
  test::TempDir tmp;
  const fs::path lin = tmp.path() / "lin", l3 = tmp.path() / "l3";
  make_llama(lin, R"(, "tie_word_embeddings": true, "rope_scaling": {"type": "linear", "factor": 2.0})", 22);
  make_llama(l3, R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
      "high_freq_factor": 4.0, "original_max_position_embeddings": 64})", 23);
  ConvertOptions o;
  o.to = ConvertTarget::kGguf;
  o.dtype = DType::kF16;
  convert_model(lin.string(), (tmp.path() / "lin.gguf").string(), o);
  const Gguf g = read_gguf((tmp.path() / "lin.gguf").string());
  EXPECT_EQ(g.s("llama.rope.scaling.type"), "linear");
  EXPECT_EQ(g.f("llama.rope.scaling.factor"), 2.0);
  EXPECT_EQ(g.u("general.file_type"), 1u);
  EXPECT_EQ(g.tensors.count("output.weight"), 0u);  // tied: llama.cpp uses token_embd
  EXPECT_EQ(g.tensors.at("blk.0.attn_q.weight").type, kGgmlF16);
  EXPECT_EQ(g.tensors.at("blk.0.attn_norm.weight").type, kGgmlF32);  // 1-D tensors stay F32
  const auto source = load_model(lin.string());
  const auto rebuilt = model_from_gguf(g, source->config);
  const auto a = logits(*source), b = logits(*rebuilt);
  EXPECT_LT(test::max_rel_error(b.data(), a.data(), a.size()), 2e-2);  // F16 weights
  EXPECT_GT(test::max_rel_error(b.data(), a.data(), a.size()), 0.0);

  o.dtype = DType::kBF16;
  convert_model(l3.string(), (tmp.path() / "l3_out").string(), o);  // a directory: l3_out/model.gguf
  const Gguf h = read_gguf((tmp.path() / "l3_out" / "model.gguf").string());
  EXPECT_EQ(h.u("general.file_type"), 32u);
  EXPECT_EQ(h.tensors.at("blk.1.ffn_down.weight").type, kGgmlBF16);
  // llama3: per-pair divisors of the frequency, as convert_hf_to_gguf.py writes rope_freqs.
  const auto freqs = h.floats("rope_freqs.weight");
  ASSERT_EQ(freqs.size(), 4u);  // wavelengths 6.3, 19.9, 62.8, 199 against bounds 16 and 64
  EXPECT_FLOAT_EQ(freqs[0], 1.0f);
  EXPECT_FLOAT_EQ(freqs[3], 8.0f);
  for (int i : {1, 2}) {
    const double wavelen = 2 * M_PI * std::pow(100.0, 2.0 * i / 8), smooth = (64 / wavelen - 1) / 3;
    EXPECT_NEAR(freqs[static_cast<size_t>(i)], 1 / ((1 - smooth) / 8 + smooth), 1e-5);
  }
}

TEST(Gguf, RefusesDiffLlama) {
  test::TempDir tmp;
  const Config c = parse_config(R"({"model_type": "diffllama", "vocab_size": 12, "hidden_size": 8,
      "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4})", "t");
  Model m(c);
  init_parameters(m, 1);
  save_new_model((tmp.path() / "d").string(), m);
  ConvertOptions o;
  o.to = ConvertTarget::kGguf;
  EXPECT_THROW(convert_model((tmp.path() / "d").string(), (tmp.path() / "d.gguf").string(), o), Error);
  EXPECT_FALSE(fs::exists(tmp.path() / "d.gguf"));
}

}  // namespace
}  // namespace difftx
