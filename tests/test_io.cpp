// File formats and parsing at the library level: safetensors round trips and conversions,
// config defaults and checks, model directories, token lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
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

// DIFF V2 (SPEC 1b): 2n query sub-heads, o_proj as wide as a baseline's, lambda_proj [n, hidden];
// the V1-only keys and a kv count that does not divide n are errors naming the key.
TEST(Config, DiffV2GeometryAndErrors) {
  const std::string base = R"("vocab_size": 10, "hidden_size": 16, "intermediate_size": 24,
      "num_hidden_layers": 2, "num_attention_heads": 4)";
  auto cfg = [&](const std::string& extra) { return "{" + base + ", " + extra + "}"; };
  const Config v2 = parse_config(cfg(R"("model_type": "diffllama_v2", "num_key_value_heads": 2)"),
                                 "v2", LayoutDefaults::kOfficial);
  EXPECT_TRUE(v2.is_diff_v2());
  EXPECT_EQ(v2.head_dim, 4);
  EXPECT_EQ(v2.query_heads(), 8);
  EXPECT_EQ(v2.kv_groups(), 2);
  EXPECT_EQ(v2.ncomp(), 1);
  EXPECT_EQ(v2.q_width(), 32);
  EXPECT_EQ(v2.o_width(), 16);
  EXPECT_EQ(v2.effective_heads(), 4);
  EXPECT_FALSE(v2.head_norm());
  const Model m(v2);
  EXPECT_EQ(m.layout.find("model.layers.1.self_attn.q_proj.weight")->shape,
            (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(m.layout.find("model.layers.1.self_attn.o_proj.weight")->shape,
            (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(m.layout.find("model.layers.1.self_attn.lambda_proj.weight")->shape,
            (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(m.layout.find("model.layers.0.self_attn.lambda_q1"), nullptr);
  EXPECT_EQ(m.layout.find("model.layers.0.self_attn.groupnorm.weight"), nullptr);
  EXPECT_EQ(config_to_json(parse_config(config_to_json(v2), "again")), config_to_json(v2));
  EXPECT_NE(config_to_json(v2).find("\"diffllama_v2\""), std::string::npos);

  // Against a baseline of the same sizes, V2 adds a second query sub-head per head (q_proj
  // grows by n*d*hidden) and lambda_proj (n*hidden) in every layer.
  const Config base_cfg = parse_config(cfg(R"("model_type": "llama", "num_key_value_heads": 2)"), "b");
  const ParameterCounts nv2 = count_parameters(m.layout);
  const ParameterCounts nb = count_parameters(Model(base_cfg).layout);
  EXPECT_EQ(nv2.total - nb.total, 2u * (16 * 16 + 4 * 16));
  EXPECT_EQ(nv2.lambda, 2u * 4 * 16);
  EXPECT_EQ(nv2.mlp, nb.mlp);
  EXPECT_EQ(nv2.embedding, 160u);
  EXPECT_EQ(nv2.lm_head, 160u);
  EXPECT_EQ(nv2.norm, 2u * 2 * 16 + 16);
  EXPECT_EQ(nv2.total, nv2.embedding + nv2.lm_head + nv2.attention + nv2.mlp + nv2.norm);

  const std::pair<const char*, const char*> bad[] = {
      {R"("model_type": "diffllama_v2", "num_key_value_heads": 3)", "num_key_value_heads"},
      {R"("model_type": "diffllama_v2", "diff_groupnorm": false)", "diff_groupnorm"},
      {R"("model_type": "diffllama_v2", "diff_lambda_init": 0.5)", "diff_lambda_init"},
      {R"("model_type": "diffllama_v2", "attention_groupnorm": true)", "attention_groupnorm"},
      {R"("model_type": "diffllama_v3")", "model_type"},
  };
  for (const auto& [extra, key] : bad) {
    try {
      parse_config(cfg(extra), "bad.json");
      ADD_FAILURE() << "accepted " << extra;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

// Paired initialisation: with one seed, a differential model and the baseline of the same sizes
// get identical values in every tensor both have (same name and shape); V2's taller q_proj
// starts with the baseline's rows. A different seed gives different values.
TEST(Init, VariantsWithOneSeedShareEveryCommonTensor) {
  const std::string base = R"("vocab_size": 10, "hidden_size": 16, "intermediate_size": 24,
      "num_hidden_layers": 2, "num_attention_heads": 4)";
  auto make = [&](const char* type, uint64_t seed) {
    auto m = std::make_unique<Model>(
        parse_config("{" + base + R"(, "model_type": ")" + type + R"("})", "c",
                     LayoutDefaults::kOfficial));
    init_parameters(*m, seed);
    return m;
  };
  const auto llama = make("llama", 11), diff = make("diffllama", 11), v2 = make("diffllama_v2", 11);
  const auto other = make("llama", 12);
  int shared = 0;
  for (const TensorSpec& t : llama->layout.tensors) {
    const float* a = llama->at(t.offset);
    const TensorSpec* d = diff->layout.find(t.name);
    ASSERT_NE(d, nullptr) << t.name;
    if (d->shape == t.shape) {
      EXPECT_TRUE(std::equal(a, a + t.numel, diff->at(d->offset))) << t.name;
      ++shared;
    }
    const TensorSpec* w = v2->layout.find(t.name);
    ASSERT_NE(w, nullptr) << t.name;
    EXPECT_TRUE(std::equal(a, a + t.numel, v2->at(w->offset))) << t.name << " (prefix)";
    if (t.kind == ParamKind::kMatrix || t.kind == ParamKind::kEmbedding)
      EXPECT_FALSE(std::equal(a, a + t.numel, other->at(t.offset))) << t.name;
  }
  EXPECT_EQ(shared, static_cast<int>(llama->layout.tensors.size()));
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
