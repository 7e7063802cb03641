// difftx experiment: every built-in experiment's --quick form end to end (report, results,
// figure; a second run resumes and re-measures nothing; an interrupted one resumes to the
// same results), bad experiment files, and the statistics of the report.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "core/error.h"
#include "experiment/needle.h"
#include "experiment/report.h"
#include "experiment/spec.h"

namespace {
using namespace cli_test;
using json = nlohmann::json;

class ExperimentCli : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("difftx_experiment_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "logs");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::vector<std::string> env() const {
    return {"DIFFTX_CACHE=" + std::string(DIFFTX_SOURCE_DIR) + "/cache", "OMP_NUM_THREADS=2"};
  }
  std::vector<std::string> quick(const std::string& name, const fs::path& out) const {
    return {"experiment", "run", name, "--quick", "--out", out.string(), "--cache-dir",
            (root_ / "tokens").string()};
  }
  RunResult run(const std::vector<std::string>& args) {
    return run_difftx(args, root_ / "logs", 0, 600, env());
  }
  fs::path root_;
};

TEST_F(ExperimentCli, ListNamesEveryBuiltInExperiment) {
  const RunResult r = run({"experiment", "list"});
  ASSERT_TRUE(r.exited && r.status == 0) << r.err;
  for (const auto& [name, text] : difftx::builtin_experiments())
    EXPECT_NE(r.out.find(name), std::string::npos) << name;
}

class QuickExperiment : public ExperimentCli, public ::testing::WithParamInterface<std::string> {};

TEST_P(QuickExperiment, RunsEndToEndAndResumesWithoutRedoingRuns) {
  const fs::path out = root_ / "out";
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r = run(quick(GetParam(), out));
  ASSERT_TRUE(r.exited && r.status == 0) << report(r);
  const double first_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const json res = json::parse(read_text(out / "results.json"));
  EXPECT_TRUE(res["complete"].get<bool>());
  const auto& text = [&] {
    for (const auto& [n, t] : difftx::builtin_experiments())
      if (n == GetParam()) return t;
    throw std::runtime_error("no such experiment");
  }();
  const difftx::ExperimentSpec spec = difftx::parse_experiment(text, "t", true, "c");
  ASSERT_EQ(res["runs"].size(), spec.arms.size() * spec.lrs.size() * spec.seeds.size());
  const bool needle = spec.kind == difftx::ExperimentKind::kNeedle;
  for (const json& run : res["runs"]) {
    EXPECT_EQ(run["steps"], spec.train.steps);
    EXPECT_TRUE(fs::exists(out / run["dir"].get<std::string>() / "measures.json"));
    if (needle) {  // every test example scored once, in its (N, depth bin) cell
      int64_t total = 0;
      for (const json& c : run["needle"]) {
        EXPECT_LE(c["correct"].get<int64_t>(), c["total"].get<int64_t>());
        total += c["total"].get<int64_t>();
        // Table 3's shares of |a|: noise in [0, 1], the signed needle share at most 1 - noise.
        EXPECT_EQ(c["span_examples"], spec.needle.noise_per_cell);
        const double at = c["span_attention"], noise = c["span_noise"];
        EXPECT_GT(noise, 0.0);
        EXPECT_LE(at + noise, 1.0 + 1e-9);
        EXPECT_GE(at, -1.0);
        if (run["arm"] == "llama") EXPECT_NEAR(at + noise, 1.0, 1e-6);  // softmax rows: no negatives
      }
      EXPECT_EQ(total, static_cast<int64_t>(spec.needle.needles.size()) * spec.needle.depth_bins *
                           spec.needle.test_per_cell);
      continue;
    }
    EXPECT_TRUE(std::isfinite(run["val_bits_per_byte"].get<double>()));
    EXPECT_GT(run["ar_hit_share"].get<double>(), 0.0);
    EXPECT_GT(run["attention_logit_top1"].get<double>(), run["attention_logit_median"].get<double>());
    EXPECT_GT(run["hidden_state_top1"].get<double>(), run["hidden_state_median"].get<double>());
    // Table 5's k-th largest over all windows: descending, the first one the top-1.
    for (const char* key : {"attention_logit_top_1_2_3_10_100", "hidden_state_top_1_2_3_10_100"}) {
      const auto top = run[key].get<std::vector<double>>();
      ASSERT_EQ(top.size(), 5u) << key;
      EXPECT_TRUE(std::is_sorted(top.rbegin(), top.rend())) << key;
    }
    EXPECT_EQ(run["attention_logit_top_1_2_3_10_100"][0], run["attention_logit_top1"]);
    EXPECT_EQ(run["hidden_state_top_1_2_3_10_100"][0], run["hidden_state_top1"]);
    // Fig. 8's losses, one per width; 16 bits rounds the logits too little to move the loss.
    ASSERT_EQ(run["quant"].size(), spec.quant_bits.size());
    for (size_t i = 0; i < spec.quant_bits.size(); ++i) {
      EXPECT_EQ(run["quant"][i]["bits"], spec.quant_bits[i]);
      const double q = run["quant"][i]["val_loss"].get<double>(), exact = run["quant_exact_loss"];
      EXPECT_TRUE(std::isfinite(q));
      if (spec.quant_bits[i] == 16) EXPECT_NEAR(q, exact, 1e-3 * exact);
    }
  }
  const std::string md = read_text(out / "report.md");
  for (const auto& arm : spec.arms) EXPECT_NE(md.find("| " + arm.name + " |"), std::string::npos);
  EXPECT_NE(md.find("paired by seed"), std::string::npos);
  EXPECT_EQ(md.find("Activation outliers") != std::string::npos, spec.outlier_windows > 0);
  EXPECT_EQ(md.find("Accuracy by number of needles") != std::string::npos, needle);
  EXPECT_EQ(md.find("Table 3)") != std::string::npos, needle);
  EXPECT_TRUE(fs::exists(out / "figures" / "loss.png"));
  EXPECT_EQ(md.find("Attention logits quantised") != std::string::npos, !spec.quant_bits.empty());
  EXPECT_EQ(fs::exists(out / "figures" / "quantised.png"), !spec.quant_bits.empty());

  // Again: every run is already measured, so nothing trains and the results are the same.
  const auto t1 = std::chrono::steady_clock::now();
  const RunResult again = run(quick(GetParam(), out));
  ASSERT_TRUE(again.exited && again.status == 0) << report(again);
  const double second_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  EXPECT_EQ(json::parse(read_text(out / "results.json")), res);
  EXPECT_LT(second_s, first_s);
}

INSTANTIATE_TEST_SUITE_P(BuiltIn, QuickExperiment, ::testing::Values("lm", "ablations", "quant", "needle", "outliers"));

// SIGTERM in the middle saves the current run; the same command then finishes the experiment
// with the results of an uninterrupted one (training resumes bit-exactly).
TEST_F(ExperimentCli, InterruptedRunResumesToTheSameResults) {
  // lm's quick form cut to two arms at one rate, as a user's own experiment file.
  json small = json::parse(read_text(fs::path(DIFFTX_SOURCE_DIR) / "experiments" / "lm.json"));
  small["quick"]["lrs"] = {3e-3};
  small["quick"]["arms"] = {small["quick"]["arms"][0], small["quick"]["arms"][2]};
  const fs::path file = root_ / "small.json";
  write_text(file, small.dump(2));
  const fs::path whole = root_ / "whole", cut = root_ / "cut";
  ASSERT_EQ(run(quick(file.string(), whole)).status, 0);
  Child c = spawn_difftx(quick(file.string(), cut), root_ / "logs", env(), 0, 600);
  for (int i = 0; i < 6000 && !fs::exists(cut / "runs" / "diff" / "lr_3e-03" / "seed_2"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::kill(c.pid, SIGTERM);
  const RunResult stopped = wait_difftx(c);
  ASSERT_TRUE(stopped.exited) << report(stopped);
  if (stopped.status == 0) GTEST_SKIP() << "the experiment finished before the signal arrived";
  EXPECT_EQ(stopped.status, 128 + SIGTERM) << report(stopped);
  const RunResult resumed = run(quick(file.string(), cut));
  ASSERT_EQ(resumed.status, 0) << report(resumed);
  const json a = json::parse(read_text(whole / "results.json"));
  const json b = json::parse(read_text(cut / "results.json"));
  ASSERT_EQ(a["runs"].size(), b["runs"].size());
  for (size_t i = 0; i < a["runs"].size(); ++i)
    for (const char* key : {"val_loss", "ar_hit_loss", "train_loss"})
      EXPECT_EQ(a["runs"][i][key], b["runs"][i][key]) << a["runs"][i]["dir"] << " " << key;
}

TEST_F(ExperimentCli, BadExperimentFilesAreOneErrorLineNamingTheKey) {
  const json good = json::parse(read_text(fs::path(DIFFTX_SOURCE_DIR) / "experiments" / "lm.json"));
  auto patched = [&](const json& patch) {
    json j = good;
    j.merge_patch(patch);
    return j.dump();
  };
  json dup_arms = good["arms"];
  dup_arms[1]["name"] = "diff";
  json bad_preset = good["arms"];
  bad_preset[0]["preset"] = "huge-diff";
  json bad_config = good["arms"];
  bad_config[0]["config"] = {{"num_key_value_heads", 3}};
  json bad_name = good["arms"];
  bad_name[0]["name"] = "../up";
  const std::pair<std::string, std::string> cases[] = {
      {"{", "invalid JSON"},
      {patched({{"version", nullptr}}), "version"},
      {patched({{"lrs", json::array()}}), "lrs"},
      {patched({{"lrs", {-1.0}}}), "lrs"},
      {patched({{"seeds", {"a"}}}), "seeds"},
      {patched({{"train", {{"steps", 0}}}}), "train.steps"},
      {patched({{"baseline", "gpt"}}), "baseline"},
      {patched({{"quant_bits", {8, 1}}}), "quant_bits"},
      {patched({{"kind", "vision"}}), "kind"},
      {patched({{"kind", "needle"}}), "needle"},
      {patched({{"kind", "needle"}, {"needle", {{"filler", "x"}, {"context_bytes", 256}, {"needles", {0}}, {"train_examples", 5}}}}), "needle.needles"},
      {patched({{"arms", dup_arms}}), "arms[1].name"},
      {patched({{"arms", bad_name}}), "arms[0].name"},
      {patched({{"arms", bad_preset}}), "huge-diff"},
      {patched({{"arms", bad_config}}), "num_key_value_heads"},
  };
  int i = 0;
  for (const auto& [text, needle] : cases) {
    const fs::path file = root_ / ("bad" + std::to_string(i++) + ".json");
    write_text(file, text);
    const fs::path out = root_ / ("out" + std::to_string(i));
    expect_error_line(run({"experiment", "run", file.string(), "--out", out.string()}), needle);
    EXPECT_FALSE(fs::exists(out)) << "an output directory was left behind for " << needle;
  }
  expect_error_line(run({"experiment", "run", "no-such-experiment", "--out", (root_ / "o").string()}),
                    "no experiment");
}

TEST(ExperimentStats, SpreadOfHandComputedValues) {
  const difftx::Spread s = difftx::spread_of({1.0, 2.0, 3.0, 6.0});
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_NEAR(s.sd, std::sqrt(14.0 / 3.0), 1e-12);  // deviations -2 -1 0 3
  EXPECT_NEAR(s.half95, 3.182 * std::sqrt(14.0 / 3.0) / 2.0, 1e-9);
  EXPECT_EQ(difftx::spread_of({5.0}).half95, 0.0);
}

// The needle data: the document holds exactly N needles with N distinct cities, the queried one
// (named in the question, answered by the summary) at a depth within its bin; the same spec
// gives the same examples; the test split fills every (N, bin) cell.
TEST(NeedleData, DocumentsHoldTheirNeedlesAtTheirDepth) {
  std::string filler;
  for (int i = 0; i < 4000; ++i) filler += "word" + std::to_string(i % 97) + " ";
  difftx::NeedleSpec spec;
  spec.context_bytes = 400;
  spec.needles = {1, 3, 6};
  spec.depth_bins = 4;
  spec.train_examples = 50;
  spec.test_per_cell = 2;
  const auto train = difftx::needle_examples(spec, filler, 0);
  ASSERT_EQ(train.size(), 50u);
  EXPECT_EQ(train[7].document, difftx::needle_examples(spec, filler, 0)[7].document);
  const auto test = difftx::needle_examples(spec, filler, 2);
  ASSERT_EQ(test.size(), 3u * 4u * 2u);
  for (const auto& e : test) {
    size_t count = 0;
    for (size_t at = e.document.find("The magic number of "); at != std::string::npos;
         at = e.document.find("The magic number of ", at + 1)) ++count;
    EXPECT_EQ(count, static_cast<size_t>(e.needles));
    const size_t q = e.document.find("\nQuestion: What is the magic number of ");
    ASSERT_NE(q, std::string::npos);
    const std::string city = e.document.substr(q + 39, e.document.size() - q - 40);
    const std::string needle = " The magic number of " + city + " is " + e.answer + ". ";
    const size_t at = e.document.find(needle);
    ASSERT_NE(at, std::string::npos) << e.document;
    EXPECT_EQ(e.document.find(" The magic number of " + city + " is", at + 1), std::string::npos);
    EXPECT_EQ(e.answer.size(), 4u);
    // Depth: the queried needle's offset in the haystack without the needles before it.
    int64_t before = 0;
    for (size_t n = e.document.find(" The magic number of "); n < at;
         n = e.document.find(" The magic number of ", n + 1))
      before += static_cast<int64_t>(e.document.find(". ", n) + 2 - n);
    int64_t needle_bytes = 0;
    for (size_t n = e.document.find(" The magic number of "); n != std::string::npos && n < q;
         n = e.document.find(" The magic number of ", n + 1))
      needle_bytes += static_cast<int64_t>(e.document.find(". ", n) + 2 - n);
    const double L = static_cast<double>(spec.context_bytes - needle_bytes);
    const double depth = static_cast<double>(static_cast<int64_t>(at) - before) / L;
    EXPECT_GE(depth, e.depth_bin / 4.0 - 1e-9);
    EXPECT_LE(depth, (e.depth_bin + 1) / 4.0 + 1e-9);
  }
  EXPECT_THROW(difftx::needle_examples(spec, "too short", 0), difftx::Error);
}

}  // namespace
