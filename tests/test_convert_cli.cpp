// difftx convert end to end: bad input ends in one error line and status 2 without output,
// whatever the target; a BF16 Hugging Face output runs in generate.
#include <gtest/gtest.h>

#include "cli_util.h"

namespace {
using namespace cli_test;

class ConvertCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("difftx_convert_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path model(const std::string& name, const std::string& extra) {
    write_text(dir_ / (name + ".json"),
               R"({"vocab_size": 30, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                   "num_attention_heads": 4, )" + extra + "}");
    const RunResult r = run_difftx({"init", "--config", (dir_ / (name + ".json")).string(), "--out",
                                    (dir_ / name).string()}, dir_);
    EXPECT_EQ(r.status, 0) << report(r);
    return dir_ / name;
  }
  fs::path dir_;
};

TEST_F(ConvertCli, BadInputIsOneErrorLineAndNoOutput) {
  const fs::path diff = model("diff", R"("model_type": "diffllama")");
  const fs::path ablated = model("ablated", R"("model_type": "diffllama", "diff_groupnorm": false)");
  const fs::path out = dir_ / "out";
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const Case cases[] = {
      {{"convert", "--model", ablated.string(), "--out", out.string(), "--to", "hf"}, "diff_groupnorm"},
      {{"convert", "--model", diff.string(), "--out", out.string(), "--to", "gguf"}, "llama"},
      {{"convert", "--model", diff.string(), "--out", out.string(), "--to", "onnx"}, "--to"},
      {{"convert", "--model", diff.string(), "--out", out.string(), "--to", "hf", "--dtype", "f64"}, "--dtype"},
      {{"convert", "--model", (dir_ / "nothing").string(), "--out", out.string(), "--to", "hf"}, "nothing"},
      {{"convert", "--model", diff.string(), "--out", diff.string(), "--to", "difftx"}, "not empty"},
  };
  const fs::path llama = model("llama", R"("model_type": "llama")");
  write_text(dir_ / "taken.gguf", "keep me");
  const RunResult taken = run_difftx({"convert", "--model", llama.string(), "--out",
                                      (dir_ / "taken.gguf").string(), "--to", "gguf"}, dir_);
  expect_error_line(taken, "already exists");
  EXPECT_EQ(read_text(dir_ / "taken.gguf"), "keep me");
  for (const Case& c : cases) {
    const RunResult r = run_difftx(c.args, dir_);
    expect_error_line(r, c.needle);
    EXPECT_FALSE(fs::exists(out)) << report(r);
  }
}

TEST_F(ConvertCli, Bf16HfOutputRunsInGenerate) {
  const fs::path src = model("llama", R"("model_type": "llama")");
  const fs::path hf = dir_ / "hf";
  const RunResult c = run_difftx({"convert", "--model", src.string(), "--out", hf.string(), "--to", "hf",
                                  "--dtype", "bf16"}, dir_);
  ASSERT_EQ(c.status, 0) << report(c);
  EXPECT_NE(c.out.find("Hugging Face Llama (BF16)"), std::string::npos) << c.out;
  const RunResult g = run_difftx({"generate", "--model", hf.string(), "--tokens", "1,2,3", "--ids",
                                  "--max-tokens", "4", "--temperature", "0"}, dir_);
  EXPECT_EQ(g.status, 0) << report(g);
}

}  // namespace
