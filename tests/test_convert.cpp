// difftx convert (SPEC section 3): Hugging Face form (layout and RoPE permutations, groupnorm
// folded into o_proj, HF-only config keys, BF16/F16, shards) and difftx form; round trips give
// the same logits; what transformers cannot express is refused naming the key.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/hf_convert.h"
#include "io/hf_export.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test_util.h"

namespace difftx {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// A model with every norm weight and lambda perturbed (a unit groupnorm would hide a wrong fold).
void save_random_model(const std::string& config_json, const fs::path& dir, uint64_t seed) {
  const Config c = parse_config(config_json, "test", LayoutDefaults::kOfficial);
  Model m(c);
  init_parameters(m, seed);
  Rng rng(seed + 100);
  for (const auto& t : m.layout.tensors)
    for (size_t i = 0; i < t.numel; ++i) {
      float& x = m.at(t.offset)[i];
      if (t.kind == ParamKind::kNorm) x = static_cast<float>(1.0 + 0.3 * rng.normal());
      else if (t.kind == ParamKind::kLambda) x = static_cast<float>(0.3 * rng.normal());
      else x = static_cast<float>(0.2 * rng.normal());
    }
  save_new_model(dir.string(), m);
}

std::vector<float> logits_of(const fs::path& dir, const std::vector<int32_t>& tokens) {
  const auto m = load_model(dir.string());
  Activations acts;
  RunOptions opts;
  forward(*m, tokens.data(), nullptr, 1, static_cast<int64_t>(tokens.size()), acts, opts);
  return acts.logits;
}

struct ConvertCase {
  const char* name;
  const char* config;
};

const ConvertCase kCases[] = {
    {"diff_official_gqa_affine",
     R"({"model_type": "diffllama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 6,
         "rope_theta": 100.0, "max_position_embeddings": 32})"},
    {"diff_split_llama3_tied",
     R"({"model_type": "diffllama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
         "diff_head_layout": "split", "rope_interleaved": false, "tie_word_embeddings": true,
         "rope_theta": 100.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
         "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}})"},
    {"llama_gptj_linear",
     R"({"model_type": "llama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "rope_theta": 100.0, "rope_scaling": {"type": "linear", "factor": 2.0}})"},
    {"llama_half_rope",
     R"({"model_type": "llama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 1, "num_attention_heads": 2, "rope_interleaved": false})"},
};

class Convert : public ::testing::TestWithParam<ConvertCase> {
 protected:
  test::TempDir tmp_;
  const std::vector<int32_t> tokens_{3, 17, 5, 39, 0, 22, 8, 8, 31, 12, 1};
};

TEST_P(Convert, DifftxToHfToDifftxKeepsTheLogits) {
  const fs::path src = tmp_.path() / "src", hf = tmp_.path() / "hf", back = tmp_.path() / "back";
  save_random_model(GetParam().config, src, 11);
  ConvertOptions to_hf;
  convert_model(src.string(), hf.string(), to_hf);
  ConvertOptions to_difftx;
  to_difftx.to = ConvertTarget::kDifftx;
  convert_model(hf.string(), back.string(), to_difftx);

  const auto ref = logits_of(src, tokens_);
  const auto via_hf = logits_of(hf, tokens_), round = logits_of(back, tokens_);
  EXPECT_LT(test::max_rel_error(via_hf.data(), ref.data(), ref.size()), 1e-6);
  EXPECT_LT(test::max_rel_error(round.data(), ref.data(), ref.size()), 1e-6);

  // The Hugging Face directory: HF keys only, in HF form; no groupnorm weight in the files.
  const json cfg = json::parse(read_file_text((hf / "config.json").string()));
  const Config source = load_config((src / "config.json").string());
  const std::set<std::string> common{"architectures", "attention_bias", "attention_dropout",
      "bos_token_id", "eos_token_id", "head_dim", "hidden_act", "hidden_size", "initializer_range",
      "intermediate_size", "max_position_embeddings", "model_type", "num_attention_heads",
      "num_hidden_layers", "num_key_value_heads", "rms_norm_eps", "rope_scaling", "rope_theta",
      "tie_word_embeddings", "torch_dtype", "transformers_version", "use_cache", "vocab_size"};
  std::set<std::string> want = common;
  if (source.is_diff()) want.insert("lambda_std_dev");
  else want.insert({"mlp_bias", "pretraining_tp"});
  std::set<std::string> got;
  for (const auto& [k, v] : cfg.items()) got.insert(k);
  EXPECT_EQ(got, want);
  EXPECT_EQ(cfg["architectures"][0], source.is_diff() ? "DiffLlamaForCausalLM" : "LlamaForCausalLM");
  EXPECT_EQ(read_file_text((hf / "config.json").string()), cfg.dump(2) + "\n");  // sorted, indent 2
  const Config hc = load_config((hf / "config.json").string());
  EXPECT_TRUE(hc.rope_scaling == source.rope_scaling);
  const auto file = SafetensorsFile::read((hf / "model.safetensors").string());
  for (const auto& t : file.tensors()) EXPECT_EQ(t.name.find("groupnorm"), std::string::npos);
  EXPECT_EQ(file.find("lm_head.weight") != nullptr, !source.tie_word_embeddings);
  EXPECT_EQ(file.metadata().at("format"), "pt");
}

INSTANTIATE_TEST_SUITE_P(Forms, Convert, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// A wrong fold or permutation must show: the HF form loaded with the source's layout keys (i.e.
// without converting) gives other logits.
TEST(ConvertCheck, UnconvertedWeightsWouldDiffer) {
  test::TempDir tmp;
  const fs::path src = tmp.path() / "src", hf = tmp.path() / "hf";
  save_random_model(kCases[0].config, src, 12);
  convert_model(src.string(), hf.string(), ConvertOptions{});
  const auto src_model = load_model(src.string());
  const auto hf_model = load_model(hf.string());
  // Official form weights read as if they were in HF form: not the same network.
  Model wrong(hf_model->config);
  for (const auto& t : wrong.layout.tensors) {
    const TensorSpec* s = src_model->layout.find(t.name);
    ASSERT_NE(s, nullptr);
    std::copy(src_model->at(s->offset), src_model->at(s->offset) + t.numel, wrong.at(t.offset));
  }
  const std::vector<int32_t> tok{1, 2, 3, 4, 5, 6};
  Activations a, b;
  RunOptions opts;
  forward(*hf_model, tok.data(), nullptr, 1, 6, a, opts);
  forward(wrong, tok.data(), nullptr, 1, 6, b, opts);
  EXPECT_GT(test::max_rel_error(b.logits.data(), a.logits.data(), a.logits.size()), 1e-2);
}

TEST(ConvertCheck, RefusesWhatTransformersCannotExpressNamingTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"("model_type": "diffllama", "diff_groupnorm": false)", "diff_groupnorm"},
      {R"("model_type": "diffllama", "diff_lambda_init": 0.5)", "diff_lambda_init"},
      {R"("model_type": "llama", "attention_groupnorm": true)", "attention_groupnorm"},
      {R"("model_type": "diffllama_v2")", "model_type"},
      {R"("model_type": "diffllama", "ext_token_enhancer": {"reduction": 2})", "ext_token_enhancer"},
      {R"("model_type": "llama", "ext_noise_reduction": {"threshold": 0.5})", "ext_noise_reduction"},
      {R"("model_type": "llama", "ext_flow_gate": true)", "ext_flow_gate"},
  };
  for (const auto& [keys, key] : cases) {
    test::TempDir tmp;
    save_random_model(std::string(R"({"vocab_size": 20, "hidden_size": 8, "intermediate_size": 8,
        "num_hidden_layers": 1, "num_attention_heads": 4, )") + keys + "}", tmp.path() / "src", 1);
    try {
      convert_model((tmp.path() / "src").string(), (tmp.path() / "hf").string(), ConvertOptions{});
      ADD_FAILURE() << keys << " was converted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(tmp.path() / "hf")) << keys;  // nothing half-written
    // The project's own form keeps it.
    ConvertOptions keep;
    keep.to = ConvertTarget::kDifftx;
    EXPECT_NO_THROW(convert_model((tmp.path() / "src").string(), (tmp.path() / "dx").string(), keep));
  }
}

TEST(ConvertCheck, Bf16AndF16WeightsAreTheRoundedValues) {
  test::TempDir tmp;
  const fs::path src = tmp.path() / "src";
  save_random_model(kCases[3].config, src, 13);
  const auto m = load_model(src.string());
  for (const DType dt : {DType::kBF16, DType::kF16}) {
    const fs::path out = tmp.path() / dtype_name(dt);
    ConvertOptions o;
    o.dtype = dt;
    convert_model(src.string(), out.string(), o);
    const auto file = SafetensorsFile::read((out / "model.safetensors").string());
    EXPECT_EQ(json::parse(read_file_text((out / "config.json").string()))["torch_dtype"],
              dt == DType::kBF16 ? "bfloat16" : "float16");
    const auto hf = load_model(out.string());
    for (const auto& t : file.tensors()) {
      EXPECT_EQ(t.dtype, dt) << t.name;
      const TensorSpec* s = hf->layout.find(t.name);
      ASSERT_NE(s, nullptr);
      // Norms and matrices alike: each value is the source value rounded (llama_half_rope is
      // already in HF form, so no permutation is involved).
      const TensorSpec* o_spec = m->layout.find(t.name);
      for (size_t i = 0; i < s->numel; ++i) {
        const float x = m->at(o_spec->offset)[i];
        const float r = dt == DType::kBF16 ? bf16_to_float(float_to_bf16(x)) : f16_to_float(float_to_f16(x));
        ASSERT_EQ(hf->at(s->offset)[i], r) << t.name << "[" << i << "]";
      }
    }
  }
}

TEST(ConvertCheck, LargeModelsAreShardedWithAnIndex) {
  test::TempDir tmp;
  const fs::path src = tmp.path() / "src", hf = tmp.path() / "hf";
  save_random_model(kCases[0].config, src, 14);
  ConvertOptions o;
  o.max_shard_bytes = 4000;  // a few tensors per shard
  convert_model(src.string(), hf.string(), o);
  EXPECT_FALSE(fs::exists(hf / "model.safetensors"));
  const json index = json::parse(read_file_text((hf / "model.safetensors.index.json").string()));
  std::set<std::string> shards;
  uint64_t bytes = 0;
  for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  EXPECT_GT(shards.size(), 3u);
  const std::string last = *shards.rbegin();
  EXPECT_EQ(last, "model-" + std::string(5 - std::to_string(shards.size()).size(), '0') +
                      std::to_string(shards.size()) + "-of-" + last.substr(last.find("-of-") + 4, 5) +
                      ".safetensors");
  for (const std::string& s : shards) {
    const auto f = SafetensorsFile::read((hf / s).string());
    uint64_t shard_bytes = 0;
    for (const auto& t : f.tensors()) shard_bytes += t.end - t.begin;
    EXPECT_TRUE(shard_bytes <= 4000 || f.tensors().size() == 1) << s;  // a big tensor alone
    bytes += shard_bytes;
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), bytes);
  const std::vector<int32_t> tok{5, 1, 4};
  const auto a = logits_of(src, tok), b = logits_of(hf, tok);
  EXPECT_LT(test::max_rel_error(b.data(), a.data(), a.size()), 1e-6);
}

TEST(HalfFloats, EveryF16AndBf16ValueRoundTripsAndRoundingIsToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    const float f = f16_to_float(b);
    if (f == f) ASSERT_EQ(float_to_f16(f), b) << h;
    const float g = bf16_to_float(b);
    if (g == g) ASSERT_EQ(float_to_bf16(g), b) << h;
  }
  EXPECT_EQ(float_to_f16(1.0f + 1.0f / 2048), 0x3C00);          // tie, even below
  EXPECT_EQ(float_to_f16(1.0f + 3.0f / 2048), 0x3C02);          // tie, even above
  EXPECT_EQ(float_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7C00);                    // rounds to infinity
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);       // tie with zero: even
  EXPECT_EQ(float_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_bf16(1.0f + 1.0f / 256), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.0f + 3.0f / 256), 0x3F82);
}

}  // namespace
}  // namespace difftx
