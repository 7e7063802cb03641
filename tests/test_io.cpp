// File formats and parsing at the library level: safetensors round trips and conversions,
// config defaults and checks, model directories, token lists.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tokens.h"
#include "model/config.h"
#include "model/params.h"
#include "test_util.h"

namespace difftx {
namespace {
namespace fs = std::filesystem;

TEST(Safetensors, RoundTripsFloat32) {
  Rng rng(1);
  const auto a = test::random_vector<float>(12, rng), b = test::random_vector<float>(5, rng);
  const auto bytes = serialize_safetensors({{"a", {3, 4}, a.data()}, {"b.c", {5}, b.data()}},
                                           {{"format", "pt"}});
  const auto f = SafetensorsFile::parse(bytes, "mem");
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const StTensor* ta = f.find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(f.to_float(*ta), a);
  EXPECT_EQ(f.to_float(*f.find("b.c")), b);
}

TEST(Safetensors, HalfPrecisionConversions) {
  EXPECT_EQ(f16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_float(0xC000), -2.0f);
  EXPECT_EQ(f16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_float(0x0200), std::ldexp(1.0f, -15));
  EXPECT_EQ(f16_to_float(0x8000), -0.0f);
  EXPECT_TRUE(std::isinf(f16_to_float(0x7C00)));
  EXPECT_TRUE(std::isnan(f16_to_float(0x7E00)));
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC040), -3.0f);
}

TEST(Safetensors, RejectsBrokenFiles) {
  const float x[2] = {1, 2};
  const auto good = serialize_safetensors({{"x", {2}, x}}, {});
  auto cut = good;
  cut.resize(good.size() - 1);
  EXPECT_THROW(SafetensorsFile::parse(cut, "cut"), Error);
  EXPECT_THROW(SafetensorsFile::parse({1, 2, 3}, "tiny"), Error);
  auto long_header = good;
  long_header[0] = 0xff;
  long_header[1] = 0xff;
  EXPECT_THROW(SafetensorsFile::parse(long_header, "long"), Error);
}

TEST(Config, HuggingFaceAndOfficialDefaults) {
  const std::string text = R"({"model_type": "diffllama", "vocab_size": 10, "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 4,
      "architectures": ["DiffLlamaForCausalLM"], "torch_dtype": "float32", "rope_scaling": null})";
  const Config hf = parse_config(text, "hf");
  EXPECT_TRUE(hf.diff_split_layout);
  EXPECT_FALSE(hf.rope_interleaved);
  EXPECT_FALSE(hf.diff_norm_affine);
  EXPECT_EQ(hf.head_dim, 2);
  EXPECT_EQ(hf.num_key_value_heads, 4);
  EXPECT_EQ(hf.max_position_embeddings, 2048);
  const Config off = parse_config(text, "new", LayoutDefaults::kOfficial);
  EXPECT_FALSE(off.diff_split_layout);
  EXPECT_TRUE(off.rope_interleaved);
  EXPECT_TRUE(off.diff_norm_affine);
  // Writing then reading keeps every key.
  const Config again = parse_config(config_to_json(off), "again");
  EXPECT_EQ(config_to_json(again), config_to_json(off));
}

TEST(Config, RejectsWhatItCannotRun) {
  const std::string base = R"("vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
      "num_hidden_layers": 1)";
  auto cfg = [&](const std::string& extra) { return "{" + base + ", " + extra + "}"; };
  EXPECT_NO_THROW(parse_config(cfg(R"("model_type": "llama", "num_attention_heads": 2)"), "ok"));
  for (const std::string bad :
       {R"("model_type": "diffllama", "num_attention_heads": 3, "head_dim": 2)",
        R"("model_type": "llama", "num_attention_heads": 3)",
        R"("model_type": "gpt2", "num_attention_heads": 2)",
        R"("model_type": "llama", "num_attention_heads": 2, "attention_bias": true)",
        R"("model_type": "llama", "num_attention_heads": 2, "hidden_act": "gelu")",
        R"("model_type": "llama", "num_attention_heads": 2, "rope_scaling": {"type": "linear"})",
        R"("model_type": "llama", "num_attention_heads": "2")",
        R"("model_type": "llama", "num_attention_heads": 0)",
        R"("model_type": "diffllama", "num_attention_heads": 4, "num_key_value_heads": 3)"})
    EXPECT_THROW(parse_config(cfg(bad), "bad"), Error) << bad;
}

// The ablation keys of SPEC section 2: defaults are the paper's model, values round-trip, and
// a wrong value or a key for the other model type is an error naming the key.
TEST(Config, AblationKeys) {
  const std::string base = R"("vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
      "num_hidden_layers": 3, "num_attention_heads": 4)";
  auto cfg = [&](const std::string& extra) { return "{" + base + ", " + extra + "}"; };
  const Config paper = parse_config(cfg(R"("model_type": "diffllama")"), "p", LayoutDefaults::kOfficial);
  EXPECT_TRUE(paper.diff_groupnorm);
  EXPECT_FALSE(paper.diff_lambda_init.has_value());
  EXPECT_NEAR(paper.lambda_init(2), 0.8 - 0.6 * std::exp(-0.6), 1e-12);
  const Config ab = parse_config(
      cfg(R"("model_type": "diffllama", "diff_groupnorm": false, "diff_lambda_init": 0.5)"), "a",
      LayoutDefaults::kOfficial);
  EXPECT_FALSE(ab.head_norm());
  EXPECT_FALSE(ab.diff_norm_affine);  // no norm, no norm weight
  EXPECT_EQ(ab.lambda_init(0), 0.5);
  EXPECT_EQ(ab.lambda_init(2), 0.5);
  EXPECT_EQ(ab.head_scale(1), 0.5);
  EXPECT_EQ(Model(ab).layout.find("model.layers.0.self_attn.groupnorm.weight"), nullptr);
  EXPECT_EQ(config_to_json(parse_config(config_to_json(ab), "again")), config_to_json(ab));
  const Config gn = parse_config(cfg(R"("model_type": "llama", "attention_groupnorm": true)"), "g");
  EXPECT_TRUE(gn.head_norm());
  EXPECT_EQ(gn.head_scale(0), 1.0);
  const Model gn_model(gn);
  const TensorSpec* w = gn_model.layout.find("model.layers.2.self_attn.groupnorm.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2}));  // over d = 8 / 4
  const std::pair<const char*, const char*> bad[] = {
      {R"("model_type": "diffllama", "diff_lambda_init": 1.0)", "diff_lambda_init"},
      {R"("model_type": "diffllama", "diff_lambda_init": -0.1)", "diff_lambda_init"},
      {R"("model_type": "diffllama", "diff_lambda_init": "0.5")", "diff_lambda_init"},
      {R"("model_type": "diffllama", "diff_groupnorm": 0)", "diff_groupnorm"},
      {R"("model_type": "diffllama", "diff_groupnorm": false, "diff_norm_affine": true)", "diff_norm_affine"},
      {R"("model_type": "diffllama", "attention_groupnorm": true)", "attention_groupnorm"},
      {R"("model_type": "llama", "diff_groupnorm": false)", "diff_groupnorm"},
      {R"("model_type": "llama", "diff_lambda_init": 0.3)", "diff_lambda_init"},
  };
  for (const auto& [extra, key] : bad) {
    try {
      parse_config(cfg(extra), "bad.json");
      ADD_FAILURE() << "accepted " << extra;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
  }
}

TEST(Checkpoint, SaveAndLoadRoundTrip) {
  const std::string dir = (fs::temp_directory_path() / ("difftx_ckpt_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  Config c = parse_config(R"({"model_type": "diffllama", "vocab_size": 10, "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
      "tie_word_embeddings": true})", "t", LayoutDefaults::kOfficial);
  Model m(c);
  init_parameters(m, 5);
  save_new_model(dir, m);
  EXPECT_THROW(save_new_model(dir, m), Error);  // refuses to overwrite
  const auto loaded = load_model(dir);
  ASSERT_EQ(loaded->layout.total, m.layout.total);
  EXPECT_TRUE(std::equal(m.params.data(), m.params.data() + m.layout.total, loaded->params.data()));
  EXPECT_EQ(config_to_json(loaded->config), config_to_json(c));
  EXPECT_EQ(m.layout.find("lm_head.weight"), nullptr);
  fs::remove_all(dir);
}

TEST(Tokens, ParsesAndRejects) {
  EXPECT_EQ(parse_token_list("5,17, 3", 20), (std::vector<int32_t>{5, 17, 3}));
  for (const char* bad : {"", " ", "1,,2", "1,a", "-1", "1.5", "20", "99999999999999", "1,"})
    EXPECT_THROW(parse_token_list(bad, 20), Error) << bad;
}

}  // namespace
}  // namespace difftx
