// Hugging Face checkpoint forms (SPEC section 2): transformers 4.x and 5.x configs with rope
// scaling and the tolerated keys, and the rotary frequencies they give.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/files.h"
#include "model/config.h"
#include "model/params.h"

namespace difftx {
namespace {

const std::string kBase = R"("model_type": "llama", "vocab_size": 10, "hidden_size": 16,
    "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2)";
Config with(const std::string& extra) { return parse_config("{" + kBase + ", " + extra + "}", "t"); }

std::string error_of(const std::string& extra) {
  try {
    with(extra);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The frequencies of transformers' _compute_llama3_parameters for Llama-3.2-1B's rope
// (theta 500000, head_dim 64, factor 32, low 1, high 4, original 8192), computed in float64 with
// that function's torch code (pairs 0 and 14 are high: unchanged; 15-17 blended; 18+ divided).
TEST(HfConfig, KajumaDiffLlamaShapeLoadsWithLlama3Frequencies) {
  const Config c = load_config(std::string(DIFFTX_SOURCE_DIR) + "/tests/data/hf/kajuma_diffllama_config.json");
  EXPECT_TRUE(c.is_diff());
  EXPECT_TRUE(c.diff_split_layout);
  EXPECT_FALSE(c.rope_interleaved);
  EXPECT_FALSE(c.diff_norm_affine);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  const ParamLayout layout = make_layout(c);
  EXPECT_EQ(layout.find("lm_head.weight"), nullptr);
  EXPECT_NEAR(static_cast<double>(layout.num_parameters()), 1.2358e9, 0.001e9);

  const std::vector<double> f = rope_inverse_frequencies(c);
  ASSERT_EQ(f.size(), 32u);
  const std::pair<int, double> expected[] = {
      {0, 1.0},
      {1, 0.6636012376960885},
      {14, 0.0032114459947525913},
      {15, 0.0012905479282092638},
      {16, 0.00042955679655936815},
      {17, 9.70828780262767e-05},
      {18, 1.9461638184831125e-05},
      {31, 9.418306725434909e-08}};
  for (const auto& [i, v] : expected) EXPECT_NEAR(f[i], v, 1e-14 * v) << "pair " << i;
}

TEST(HfConfig, LinearScalingDividesEveryFrequency) {
  const Config plain = with(R"("rope_theta": 100.0)");
  const Config lin = with(R"("rope_theta": 100.0, "rope_scaling": {"type": "linear", "factor": 4.0})");
  EXPECT_EQ(lin.rope_scaling.type, RopeType::kLinear);
  const auto a = rope_inverse_frequencies(plain), b = rope_inverse_frequencies(lin);
  ASSERT_EQ(a.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_DOUBLE_EQ(b[i], a[i] / 4.0);
  EXPECT_EQ(a[0], 1.0);
  EXPECT_NEAR(a[1], std::pow(100.0, -0.25), 1e-15);
}

// transformers 5.x writes rope_theta inside rope_parameters; 4.x writes rope_scaling.
TEST(HfConfig, Transformers5RopeParametersEqualThe4xForm) {
  const Config v4 = with(R"("rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3",
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192}, "torch_dtype": "bfloat16")");
  const Config v5 = with(R"("rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192}, "dtype": "bfloat16")");
  EXPECT_EQ(v5.rope_theta, 500000.0);
  EXPECT_TRUE(v4.rope_scaling == v5.rope_scaling);
  EXPECT_EQ(rope_inverse_frequencies(v4), rope_inverse_frequencies(v5));
  EXPECT_EQ(with(R"("rope_parameters": {"rope_type": "default", "rope_theta": 1000.0})").rope_theta, 1000.0);
  // Both forms at once are fine when they agree.
  EXPECT_NO_THROW(with(R"("rope_scaling": {"type": "linear", "factor": 2.0},
      "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})"));
}

TEST(HfConfig, ScalingIsWrittenAndReadBack) {
  const Config c = with(R"("rope_scaling": {"rope_type": "llama3", "factor": 32.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64})");
  const Config back = parse_config(config_to_json(c), "again");
  EXPECT_TRUE(back.rope_scaling == c.rope_scaling);
  EXPECT_EQ(config_to_json(back), config_to_json(c));
  // No scaling: no key, as before this key existed.
  EXPECT_EQ(config_to_json(with("\"rope_theta\": 10.0")).find("rope_scaling"), std::string::npos);
}

TEST(HfConfig, ToleratedKeysAndErrorsNamingTheKey) {
  EXPECT_NO_THROW(with(R"("mlp_bias": false, "pretraining_tp": 1, "torch_dtype": "float16",
      "dtype": "bfloat16", "_name_or_path": "x", "transformers_version": "5.0.0")"));
  const std::pair<const char*, const char*> bad[] = {
      {R"("pretraining_tp": 2)", "pretraining_tp"},
      {R"("mlp_bias": true)", "mlp_bias"},
      {R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0})", "yarn"},
      {R"("rope_scaling": {"rope_type": "dynamic", "factor": 4.0})", "dynamic"},
      {R"("rope_scaling": {"type": "linear"})", "factor"},
      {R"("rope_scaling": {"type": "linear", "factor": -1})", "factor"},
      {R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0})", "original_max_position_embeddings"},
      {R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})", "high_freq_factor"},
      {R"("rope_scaling": "linear")", "rope_scaling"},
      {R"("rope_parameters": {"rope_type": "longrope"})", "longrope"},
      {R"("rope_scaling": {"type": "linear", "factor": 2.0},
          "rope_parameters": {"rope_type": "linear", "factor": 3.0})", "rope_parameters"},
  };
  for (const auto& [extra, key] : bad) {
    const std::string msg = error_of(extra);
    EXPECT_NE(msg.find(key), std::string::npos) << extra << " -> " << msg;
  }
}

}  // namespace
}  // namespace difftx
