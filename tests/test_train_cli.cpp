// `difftx train` and `difftx eval` end to end: determinism, bit-exact resume after SIGKILL,
// SIGINT and SIGTERM, resume rules (stored options, conflicting flags, --steps extension), the
// directory lock, val_loss equal to `difftx eval`, a disk that fills up during a save, and bad
// input.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
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

TEST_F(TrainCli, SigtermSavesAndAPlainResumeContinuesWithTheStoredOptions) {
  const RunResult a = run(train_args("a", 16));
  ASSERT_EQ(a.status, 0) << report(a);
  Child c = spawn_difftx(train_args("b", 16), root_ / "logs", {}, 0, 300);
  wait_for_steps(root_ / "b", 5);
  ::kill(c.pid, SIGTERM);
  const RunResult stopped = wait_difftx(c);
  ASSERT_TRUE(stopped.exited) << report(stopped);
  EXPECT_EQ(stopped.status, 143) << report(stopped);
  EXPECT_NE(stopped.err.find("SIGTERM"), std::string::npos) << report(stopped);
  // No --data, --steps, --batch, --seq...: everything comes from the checkpoint (the token
  // cache is found through DIFFTX_CACHE, which is not a run option).
  const RunResult resumed = run({"train", "--out", (root_ / "b").string(), "--resume"},
                                {"DIFFTX_CACHE=" + (root_ / "cache").string()});
  ASSERT_EQ(resumed.status, 0) << report(resumed);
  EXPECT_EQ(losses(root_ / "b"), losses(root_ / "a"));
  EXPECT_EQ(read_bytes(root_ / "a" / "model.safetensors"), read_bytes(root_ / "b" / "model.safetensors"));
}

TEST_F(TrainCli, EveryFlagThatWouldChangeTheRunIsRefusedOnResumeNamingBothValues) {
  ASSERT_EQ(run(train_args("a", 4)).status, 0);
  const auto state = read_bytes(root_ / "a" / "train_state.safetensors");
  const std::string data = (root_ / "train.txt").string(), val = (root_ / "val.txt").string();
  struct Case {
    std::string flag, value, stored;
  };
  for (const Case& c : std::vector<Case>{{"--batch", "3", "2"},
                                         {"--seq", "16", "32"},
                                         {"--seed", "8", "7"},
                                         {"--accum", "2", "1"},
                                         {"--lr", "0.01", "0.003"},
                                         {"--min-lr-ratio", "0.5", "0.1"},
                                         {"--warmup", "2", "0"},
                                         {"--schedule", "linear", "cosine"},
                                         {"--weight-decay", "0.2", "0.1"},
                                         {"--grad-clip", "2", "1"},
                                         {"--precision", "bf16", "fp32"},
                                         {"--eval-windows", "3", "2"},
                                         {"--tokenizer", "gpt2", "byte"},
                                         {"--data", val, data},
                                         {"--val", data, val},
                                         {"--steps", "3", "4"}}) {
    const RunResult r = run({"train", "--out", (root_ / "a").string(), "--resume", c.flag, c.value,
                             "--cache-dir", (root_ / "cache").string()});
    expect_error_line(r, c.flag);
    EXPECT_NE(r.err.find(c.stored), std::string::npos) << "the stored value: " << report(r);
    EXPECT_NE(r.err.find(c.value), std::string::npos) << "the given value: " << report(r);
  }
  expect_error_line(run({"train", "--out", (root_ / "a").string(), "--resume", "--preset",
                         "tiny-llama", "--cache-dir", (root_ / "cache").string()}),
                    "--preset");
  // The same values again are fine, and so are flags that only change saving and printing.
  auto same = train_args("a", 4);
  same.insert(same.end(), {"--resume", "--log-every", "3", "--attn-stats-every", "2"});
  const RunResult ok = run(same);
  EXPECT_EQ(ok.status, 0) << report(ok);
  EXPECT_EQ(read_bytes(root_ / "a" / "train_state.safetensors").size(), state.size());
}

TEST_F(TrainCli, StepsExtendARunToTheLossesOfOneLongerRun) {
  // A constant lr after warm-up (--min-lr-ratio 1) does not depend on the total steps, so the
  // extended run must match the longer one exactly.
  auto args = [&](const std::string& out, int steps) {
    auto v = train_args(out, steps);
    v.insert(v.end(), {"--min-lr-ratio", "1", "--warmup", "2"});
    return v;
  };
  ASSERT_EQ(run(args("long", 12)).status, 0);
  ASSERT_EQ(run(args("ext", 6)).status, 0);
  const RunResult ext = run({"train", "--out", (root_ / "ext").string(), "--resume", "--steps", "12",
                             "--cache-dir", (root_ / "cache").string()});
  ASSERT_EQ(ext.status, 0) << report(ext);
  EXPECT_EQ(losses(root_ / "ext"), losses(root_ / "long"));
  EXPECT_EQ(read_bytes(root_ / "long" / "model.safetensors"), read_bytes(root_ / "ext" / "model.safetensors"));
}

TEST_F(TrainCli, ASecondResumeOfARunInProgressFailsOnTheLock) {
  ASSERT_EQ(run(train_args("a", 4)).status, 0);
  auto longer = train_args("a", 400);
  longer.push_back("--resume");
  Child first = spawn_difftx(longer, root_ / "logs", {}, 0, 300);
  wait_for_steps(root_ / "a", 6);
  fs::create_directories(root_ / "logs2");
  const RunResult second = run_difftx(longer, root_ / "logs2", 0, 300);
  expect_error_line(second, "in use by another difftx process (pid " + std::to_string(first.pid) + ")");
  ::kill(first.pid, SIGTERM);
  const RunResult stopped = wait_difftx(first);
  EXPECT_EQ(stopped.status, 143) << report(stopped);
  // The lock died with its holder: the run can be resumed again.
  const RunResult again = run({"train", "--out", (root_ / "a").string(), "--resume", "--steps", "5",
                               "--cache-dir", (root_ / "cache").string()});
  expect_error_line(again, "--steps");  // below the step reached (at least 6)
  const auto reached = losses(root_ / "a").rbegin()->first;
  const RunResult more = run({"train", "--out", (root_ / "a").string(), "--resume", "--steps",
                              std::to_string(reached + 2), "--cache-dir", (root_ / "cache").string()});
  EXPECT_EQ(more.status, 0) << report(more);
}

TEST_F(TrainCli, ValLossEqualsEvalOnTheSameWindows) {
  ASSERT_EQ(run(train_args("a", 4)).status, 0);
  double val_loss = NAN;
  for (const auto& j : read_metrics(root_ / "a"))
    if (j.contains("val_loss") && j["step"] == 4) val_loss = j["val_loss"].get<double>();
  ASSERT_TRUE(std::isfinite(val_loss));
  // train_args: --seq 32 --batch 2 --eval-windows 2 --threads 2.
  const RunResult r = run({"eval", "--model", (root_ / "a").string(), "--data",
                           (root_ / "val.txt").string(), "--seq", "32", "--batch", "2",
                           "--max-tokens", "64", "--threads", "2", "--cache-dir",
                           (root_ / "cache").string()});
  ASSERT_EQ(r.status, 0) << report(r);
  const json j = json::parse(r.out);
  EXPECT_EQ(j["tokens"].get<int64_t>(), 64);
  EXPECT_NEAR(j["loss"].get<double>(), val_loss, 1e-9 * val_loss);
}

TEST_F(TrainCli, AVocabularyTheTokenizerCannotPrintIsRefused) {
  ASSERT_EQ(run(train_args("a", 4)).status, 0);
  json cfg = json::parse(read_text(root_ / "a" / "config.json"));
  cfg["vocab_size"] = cfg["vocab_size"].get<int64_t>() + 64;  // padded beyond the byte tokenizer
  write_text(root_ / "big.json", cfg.dump());
  auto args = train_args("big", 4);
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--preset") {
      args[i] = "--config";
      args[i + 1] = (root_ / "big.json").string();
    }
  expect_error_line(run(args), "cannot print");
  EXPECT_FALSE(fs::exists(root_ / "big"));
}

TEST_F(TrainCli, OutOfRangeNumbersAreOneLineErrorsNamingTheFlag) {
  ASSERT_EQ(run(train_args("a", 4)).status, 0);
  const std::string model = (root_ / "a").string(), text = (root_ / "val.txt").string();
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  const std::vector<Case> cases = {
      {{"init", "--config", "c.json", "--out", "x", "--seed", "-1"}, "--seed"},
      {{"init", "--config", "c.json", "--out", "x", "--seed", "18446744073709551616"}, "--seed"},
      {{"eval", "--model", model, "--data", text, "--seq", "0"}, "--seq"},
      {{"eval", "--model", model, "--data", text, "--seq", "100000"}, "--seq"},
      {{"eval", "--model", model, "--data", text, "--batch", "-2"}, "--batch"},
      {{"eval", "--model", model, "--data", text, "--max-tokens", "-1"}, "--max-tokens"},
      {{"generate", "--model", model, "--prompt", "a", "--max-tokens", "9223372036854775807"}, "--max-tokens"},
      {{"generate", "--model", model, "--prompt", "a", "--seed", "-1"}, "--seed"},
      {{"generate", "--model", model, "--prompt", "a", "--temperature", "inf"}, "--temperature"},
      {{"generate", "--model", model, "--prompt", "a", "--top-k", "-1"}, "--top-k"},
      {{"generate", "--model", model, "--prompt", "a", "--top-p", "1.5"}, "--top-p"},
      {{"bench", "--config", "c.json", "--seq", "9223372036854775808"}, "--seq"},
      {{"bench", "--config", "c.json", "--threads", "100000"}, "--threads"},
      {{"bench", "--config", "c.json", "--steps", "0"}, "--steps"},
      {{"train", "--out", model, "--resume", "--steps", "0"}, "--steps"},
      {{"train", "--out", model, "--resume", "--lr", "nan"}, "--lr"},
      {{"train", "--out", model, "--resume", "--accum", "0"}, "--accum"},
      {{"train", "--out", model, "--resume", "--attn-stats-every", "-1"}, "--attn-stats-every"},
      {{"tokenizer", "train", "--data", text, "--out", "x", "--vocab-size", "5"}, "--vocab-size"},
  };
  for (const Case& c : cases) {
    const RunResult r = run(c.args);
    expect_error_line(r, c.flag);
    EXPECT_EQ(r.err.find("e+30"), std::string::npos) << "no giant range: " << report(r);
  }
}

TEST_F(TrainCli, AWarningFollowedByAnErrorIsStillOneLine) {
  ASSERT_EQ(run(train_args("a", 4)).status, 0);
  // A model whose weights file holds one tensor too many (a warning when loaded).
  fs::copy(root_ / "a", root_ / "w");
  const auto bytes = read_bytes(root_ / "w" / "model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | bytes[static_cast<size_t>(i)];
  json header = json::parse(std::string(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n)));
  const size_t data_size = bytes.size() - 8 - n;
  header["extra.weight"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {data_size, data_size + 4}}};
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(h.size() >> (8 * i));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), bytes.begin() + 8 + static_cast<long>(n), bytes.end());
  out.insert(out.end(), 4, 0);
  write_bytes(root_ / "w" / "model.safetensors", out);
  const RunResult warned = run({"inspect", "--model", (root_ / "w").string(), "--tokens", "1,2",
                                "--out", (root_ / "ok.safetensors").string()});
  EXPECT_EQ(warned.status, 0) << report(warned);
  EXPECT_NE(warned.err.find("warning"), std::string::npos) << "the warning shows on success";
  const RunResult failed = run({"inspect", "--model", (root_ / "w").string(), "--tokens", "1,999999",
                                "--out", (root_ / "x.safetensors").string()});
  expect_error_line(failed, "extra.weight");
}

}  // namespace
