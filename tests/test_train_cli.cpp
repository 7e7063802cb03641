// `difftx train` and `difftx eval` end to end: determinism, bit-exact resume after SIGKILL and
// SIGINT, a disk that fills up during a save, and bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace {
using namespace cli_test;
using json = nlohmann::json;

// A corpus of pseudo-sentences: deterministic, a few tens of KB.
std::string make_corpus(size_t words, unsigned seed) {
  static const char* kWords[] = {"the", "union", "state", "of", "congress", "people", "nation",
                                 "war", "peace", "law", "year", "great", "free", "trade", "and",
                                 "we", "shall", "our", "government", "public", "to", "in"};
  std::string s;
  unsigned x = seed;
  for (size_t i = 0; i < words; ++i) {
    x = x * 1103515245u + 12345u;
    s += kWords[(x >> 16) % 22];
    s += (i % 13 == 12) ? ".\n" : " ";
  }
  return s;
}

std::vector<json> read_metrics(const fs::path& dir) {
  std::vector<json> v;
  for (const auto& line : lines_of(read_text(dir / "metrics.jsonl")))
    if (!line.empty()) v.push_back(json::parse(line));
  return v;
}

// step -> loss of the training lines.
std::map<int64_t, double> losses(const fs::path& dir) {
  std::map<int64_t, double> m;
  for (const auto& j : read_metrics(dir))
    if (j.contains("loss")) m[j["step"].get<int64_t>()] = j["loss"].get<double>();
  return m;
}

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("difftx_train_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "logs");
    write_text(root_ / "train.txt", make_corpus(12000, 1));
    write_text(root_ / "val.txt", make_corpus(3000, 2));
  }
  void TearDown() override { fs::remove_all(root_); }

  std::vector<std::string> train_args(const std::string& out, int steps) const {
    return {"train", "--data", (root_ / "train.txt").string(), "--val", (root_ / "val.txt").string(),
            "--out", (root_ / out).string(), "--preset", "tiny-diff", "--tokenizer", "byte",
            "--steps", std::to_string(steps), "--batch", "2", "--seq", "32", "--lr", "3e-3",
            "--save-every", "4", "--eval-every", "8", "--eval-windows", "2", "--seed", "7",
            "--cache-dir", (root_ / "cache").string(), "--threads", "2"};
  }
  RunResult run(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    return run_difftx(args, root_ / "logs", 0, 300, env);
  }
  // Waits until the run in `dir` has logged at least `n` steps.
  static void wait_for_steps(const fs::path& dir, size_t n) {
    for (int i = 0; i < 3000; ++i) {
      std::error_code ec;
      if (fs::exists(dir / "metrics.jsonl", ec) && losses(dir).size() >= n) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "the run never reached step " << n;
  }
  fs::path root_;
};

TEST_F(TrainCli, SameSeedSameLossesAndResumeAfterSigkillIsBitExact) {
  const RunResult a = run(train_args("a", 24));
  ASSERT_EQ(a.status, 0) << report(a);
  const auto want = losses(root_ / "a");
  ASSERT_EQ(want.size(), 24u);
  EXPECT_LT(want.rbegin()->second, want.begin()->second) << "training should reduce the loss";

  // Kill the same run at an arbitrary moment after step 10, then resume it.
  Child c = spawn_difftx(train_args("b", 24), root_ / "logs", {}, 0, 300);
  wait_for_steps(root_ / "b", 10);
  ::kill(c.pid, SIGKILL);
  const RunResult killed = wait_difftx(c);
  EXPECT_EQ(killed.signal, SIGKILL);
  auto args = train_args("b", 24);
  args.push_back("--resume");
  const RunResult resumed = run(args);
  ASSERT_EQ(resumed.status, 0) << report(resumed);
  EXPECT_EQ(losses(root_ / "b"), want) << "the resumed run must log exactly the same losses";
  // The final weights are identical too.
  EXPECT_EQ(read_bytes(root_ / "a" / "model.safetensors"), read_bytes(root_ / "b" / "model.safetensors"));
}

TEST_F(TrainCli, SigintSavesAndResumeContinues) {
  const RunResult a = run(train_args("a", 16));
  ASSERT_EQ(a.status, 0) << report(a);
  Child c = spawn_difftx(train_args("b", 16), root_ / "logs", {}, 0, 300);
  wait_for_steps(root_ / "b", 5);
  ::kill(c.pid, SIGINT);
  const RunResult stopped = wait_difftx(c);
  ASSERT_TRUE(stopped.exited) << report(stopped);
  EXPECT_EQ(stopped.status, 130) << report(stopped);
  EXPECT_NE(stopped.err.find("interrupted"), std::string::npos) << report(stopped);
  auto args = train_args("b", 16);
  args.push_back("--resume");
  ASSERT_EQ(run(args).status, 0);
  EXPECT_EQ(losses(root_ / "b"), losses(root_ / "a"));
}

TEST_F(TrainCli, DiskFullDuringSaveKeepsTheLastCheckpoint) {
  ASSERT_EQ(run(train_args("a", 8)).status, 0);
  const auto state_before = read_bytes(root_ / "a" / "train_state.safetensors");
  auto args = train_args("a", 16);
  args.push_back("--resume");
  const RunResult full = run(args, {"DIFFTX_FAIL_WRITE=train_state"});
  // Progress lines come first on stderr; the run must end with the one error line.
  EXPECT_EQ(full.status, 2) << report(full);
  const auto lines = lines_of(full.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().rfind(kErrorPrefix, 0), 0u) << report(full);
  EXPECT_NE(lines.back().find("No space left"), std::string::npos) << report(full);
  EXPECT_EQ(read_bytes(root_ / "a" / "train_state.safetensors"), state_before);
  for (const auto& e : fs::directory_iterator(root_ / "a"))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  // And the run can go on from that checkpoint.
  const RunResult again = run(args);
  EXPECT_EQ(again.status, 0) << report(again);
  EXPECT_EQ(losses(root_ / "a").size(), 16u);
}

TEST_F(TrainCli, EvalReportsLossPerplexityAndBitsPerByte) {
  auto args = train_args("a", 4);
  args.insert(args.end(), {"--attn-stats-every", "2"});
  ASSERT_EQ(run(args).status, 0);
  // Attention monitoring lines at steps 2 and 4, with one lambda per layer.
  int monitored = 0;
  for (const auto& j : read_metrics(root_ / "a"))
    if (j.contains("attn_sparsity")) {
      ++monitored;
      EXPECT_EQ(j["lambda"].size(), 2u);
      EXPECT_GE(j["attn_sparsity"].get<double>(), 0.0);
    }
  EXPECT_EQ(monitored, 2);
  const RunResult r = run({"eval", "--model", (root_ / "a").string(), "--data",
                           (root_ / "val.txt").string(), "--seq", "32", "--cache-dir",
                           (root_ / "cache").string()});
  ASSERT_EQ(r.status, 0) << report(r);
  const json j = json::parse(r.out);
  EXPECT_GT(j["tokens"].get<int64_t>(), 1000);
  EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(j["loss"].get<double>()), 1e-6 * j["perplexity"].get<double>());
  // Byte-level tokens are one byte each: bits per byte = loss / ln 2.
  EXPECT_NEAR(j["bits_per_byte"].get<double>(), j["loss"].get<double>() / std::log(2.0), 1e-3);
}

TEST_F(TrainCli, BadInputIsAClearError) {
  write_text(root_ / "empty.txt", "");
  write_text(root_ / "short.txt", "too short");
  auto with = [&](std::vector<std::string> args, const std::string& flag, const std::string& value) {
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == flag) args[i + 1] = value;
    return args;
  };
  const auto base = train_args("x", 4);
  expect_error_line(run(with(base, "--data", (root_ / "missing.txt").string())), "missing.txt");
  expect_error_line(run(with(base, "--data", (root_ / "empty.txt").string())), "empty");
  expect_error_line(run(with(base, "--data", (root_ / "short.txt").string())), "window");
  expect_error_line(run(with(base, "--tokenizer", "spm:" + (root_ / "nope.model").string())));
  expect_error_line(run(with(base, "--preset", "huge")), "preset");
  expect_error_line(run(with(base, "--seq", "0")), "--seq");
  EXPECT_FALSE(fs::exists(root_ / "x")) << "a failed start must not leave a run directory";
  // --resume of a directory that holds another config.
  ASSERT_EQ(run(train_args("a", 4)).status, 0);
  auto other = with(train_args("a", 8), "--preset", "tiny-llama");
  other.push_back("--resume");
  expect_error_line(run(other), "config");
  auto missing = train_args("nothing", 8);
  missing.push_back("--resume");
  expect_error_line(run(missing));
}

}  // namespace
