// Hugging Face checkpoint forms (SPEC section 2): transformers 4.x and 5.x configs with rope
// scaling and the tolerated keys, and the rotary frequencies they give.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "io/hf_shard_index.h"
#include "io/safetensors.h"
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

// ---- sharded checkpoints ---------------------------------------------------------------------

namespace fs = std::filesystem;

class Sharded : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("difftx_sharded_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A tied model (no lm_head in the files) in Hugging Face form.
    const Config c = parse_config(R"({"model_type": "diffllama", "vocab_size": 11,
        "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
        "num_attention_heads": 4, "tie_word_embeddings": true})", "sharded");
    model_ = std::make_unique<Model>(c);
    init_parameters(*model_, 5);
    write_file_atomic((dir_ / "config.json").string(), config_to_json(c));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Splits the tensors over `n` shards in layout order (plus an inv_freq buffer in the first),
  // writes them and an index mapping each tensor to where `index_of` says.
  void write_shards(int n, const std::map<std::string, std::string>& index_override = {},
                    const std::string& duplicate = "") {
    const auto& ts = model_->layout.tensors;
    std::vector<std::vector<TensorToWrite>> shards(static_cast<size_t>(n));
    ShardIndex index;
    static const float inv_freq[1] = {1.0f};
    for (size_t i = 0; i < ts.size(); ++i) {
      const size_t k = i * static_cast<size_t>(n) / ts.size();
      shards[k].push_back({ts[i].name, ts[i].shape, model_->at(ts[i].offset)});
      if (ts[i].name == duplicate && k + 1 < shards.size())
        shards[k + 1].push_back({ts[i].name, ts[i].shape, model_->at(ts[i].offset)});
    }
    shards[0].push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", {1}, inv_freq});
    for (int k = 0; k < n; ++k) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, n);
      for (const auto& t : shards[static_cast<size_t>(k)]) index.weight_map[t.name] = name;
      write_safetensors((dir_ / name).string(), shards[static_cast<size_t>(k)]);
    }
    for (const auto& [t, f] : index_override) index.weight_map[t] = f;
    write_file_atomic((dir_ / "model.safetensors.index.json").string(), shard_index_json(index, 0));
  }

  std::string load_error() {
    try {
      load_model(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  std::unique_ptr<Model> model_;
};

TEST_F(Sharded, LoadsEveryTensorFromItsShard) {
  write_shards(3);
  const auto loaded = load_model(dir_.string());
  ASSERT_EQ(loaded->layout.total, model_->layout.total);
  for (const auto& spec : model_->layout.tensors)
    for (size_t i = 0; i < spec.numel; ++i)
      ASSERT_EQ(loaded->at(spec.offset)[i], model_->at(spec.offset)[i]) << spec.name;
  EXPECT_EQ(loaded->layout.lm_head, loaded->layout.embed);  // tied: absent from the files
}

TEST_F(Sharded, MissingShardIsAnErrorNamingIt) {
  write_shards(2);
  fs::remove(dir_ / "model-00002-of-00002.safetensors");
  const std::string msg = load_error();
  EXPECT_NE(msg.find("model-00002-of-00002.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST_F(Sharded, IndexNamingATensorAbsentFromItsShard) {
  write_shards(2, {{"model.layers.0.mlp.nonexistent.weight", "model-00001-of-00002.safetensors"}});
  const std::string msg = load_error();
  EXPECT_NE(msg.find("nonexistent"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not hold it"), std::string::npos) << msg;
}

TEST_F(Sharded, IndexPlacingATensorInTheWrongShard) {
  write_shards(2, {{"model.norm.weight", "model-00001-of-00002.safetensors"}});
  const std::string msg = load_error();
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
}

TEST_F(Sharded, TensorInTwoShards) {
  write_shards(2, {}, "model.layers.0.input_layernorm.weight");
  const std::string msg = load_error();
  EXPECT_NE(msg.find("also in shard"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.0.input_layernorm.weight"), std::string::npos) << msg;
}

// Loading reads each tensor from the file when it is converted (SafetensorsFile::open), so a
// model never holds its whole file in memory; the values equal those of a whole-file read.
TEST(SafetensorsOpen, ReadsTensorsFromTheFileLikeAWholeRead) {
  const fs::path dir = fs::temp_directory_path() / ("difftx_st_open_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "t.safetensors").string();
  std::vector<float> a(1000), b(7);
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(static_cast<float>(i)) * 100.0f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = -static_cast<float>(i) / 3.0f;
  write_safetensors(path, {{"a", {10, 100}, a.data(), DType::kBF16}, {"b", {7}, b.data(), DType::kF32},
                           {"c", {1000}, a.data(), DType::kF16}});
  const SafetensorsFile whole = SafetensorsFile::read(path), lazy = SafetensorsFile::open(path);
  ASSERT_EQ(lazy.tensors().size(), 3u);
  for (const auto& t : whole.tensors()) {
    const StTensor* u = lazy.find(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->dtype, t.dtype);
    EXPECT_EQ(lazy.to_float(*u), whole.to_float(t)) << t.name;
  }
  // Shrunk after opening: an Error, not garbage or a signal.
  fs::resize_file(path, fs::file_size(path) - 100);
  EXPECT_THROW(lazy.to_float(*lazy.find("c")), Error);
  EXPECT_THROW(SafetensorsFile::open(path), Error);  // now its offsets lie outside the file
  EXPECT_THROW(SafetensorsFile::open(dir.string()), Error);
  EXPECT_THROW(SafetensorsFile::open((dir / "absent").string()), Error);
  fs::remove_all(dir);
}

TEST(ShardIndex, RejectsMalformedIndexes) {
  const char* bad[] = {
      "[]", "{}", R"({"weight_map": []})", R"({"weight_map": {}})",
      R"({"weight_map": {"a": 3}})", R"({"weight_map": {"a": "../x.safetensors"}})",
      R"({"weight_map": {"a": "/etc/passwd"}})", R"({"weight_map": {"a": ".."}})",
      R"({"weight_map": {"a": ""}})", "{",
  };
  for (const char* text : bad) EXPECT_THROW(parse_shard_index(text, "idx"), Error) << text;
  const ShardIndex ok = parse_shard_index(
      R"({"metadata": {"total_size": 8}, "weight_map": {"b": "s2", "a": "s1", "c": "s1"}})", "idx");
  EXPECT_EQ(ok.files(), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(parse_shard_index(shard_index_json(ok, 8), "again").weight_map, ok.weight_map);
}

}  // namespace
}  // namespace difftx
