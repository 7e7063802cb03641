// difftx classify, summarize and evaluate end to end on the slices in tests/data/tasks: the
// SPEC outputs, resume after an interruption equal to an uninterrupted run, and bad input
// (file and line in one error line, exit 2, nothing left behind).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace {
using namespace cli_test;
using nlohmann::json;

const fs::path kData = fs::path(DIFFTX_SOURCE_DIR) / "tests" / "data" / "tasks";

class TasksCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("difftx_tasks_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  RunResult run(std::vector<std::string> args) {
    args.push_back("--threads");
    args.push_back("1");
    return run_difftx(args, dir_, 0, 600);
  }
  static std::string data(const char* name) { return (kData / name).string(); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // A small classifier on the three-way spam slice.
  RunResult train_classifier(const std::string& out, const std::string& preset = "tiny-diff",
                             std::vector<std::string> extra = {}, const std::string& steps = "6") {
    std::vector<std::string> args{"classify", "train", "--data", data("spam3.train.jsonl"),
                                  "--out", out, "--preset", preset, "--seq", "48", "--steps", steps,
                                  "--batch", "4", "--lr", "3e-3", "--seed", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  }
  static size_t line_count(const std::string& text) { return lines_of(text).size(); }
  fs::path dir_;
};

TEST_F(TasksCli, ClassifyTrainEvalPredict) {
  const std::string out = path("cls");
  const RunResult t = train_classifier(out, "tiny-diff",
      {"--val", data("spam3.validation.jsonl"), "--eval-every", "3", "--head", "mlp",
       "--dropout", "0.1", "--pooling", "mean", "--class-weights", "balanced"});
  ASSERT_EQ(t.status, 0) << report(t);
  for (const char* f : {"config.json", "model.safetensors", "classifier.json",
                        "classifier.safetensors", "task_state.safetensors", "metrics.jsonl"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  // 6 step records and 2 validation records (steps 3 and 6).
  size_t steps = 0, evals = 0;
  for (const auto& line : lines_of(read_text(fs::path(out) / "metrics.jsonl"))) {
    const json j = json::parse(line);
    steps += j.contains("loss");
    evals += j.contains("val_loss");
  }
  EXPECT_EQ(steps, 6u);
  EXPECT_EQ(evals, 2u);
  const json summary = json::parse(t.out);
  EXPECT_EQ(summary["steps"], 6);

  const RunResult e = run({"classify", "eval", "--model", out, "--data", data("spam3.test.jsonl"),
                           "--baseline"});
  ASSERT_EQ(e.status, 0) << report(e);
  const json j = json::parse(e.out);
  for (const char* k : {"accuracy", "macro_f1", "per_class", "confusion", "examples_per_s"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["accuracy"].get<double>(), 1.0);
  int64_t total = 0;
  for (const auto& row : j["confusion"]) for (const auto& n : row) total += n.get<int64_t>();
  EXPECT_EQ(static_cast<size_t>(total), line_count(read_text(data("spam3.test.jsonl"))));
  EXPECT_EQ(j["labels"], json({"easy_ham", "hard_ham", "spam"}));
  EXPECT_EQ(j["data"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_GT(j["examples_per_s"].get<double>(), 0.0);
  ASSERT_TRUE(j.contains("baseline"));
  EXPECT_GE(j["baseline"]["accuracy"].get<double>(), 0.0);

  const RunResult p = run({"classify", "predict", "--model", out, "--data",
                           data("spam3.test.jsonl"), "--out", path("pred.jsonl")});
  ASSERT_EQ(p.status, 0) << report(p);
  const auto lines = lines_of(read_text(path("pred.jsonl")));
  EXPECT_EQ(lines.size(), line_count(read_text(data("spam3.test.jsonl"))));
  for (const auto& line : lines) {
    const json pj = json::parse(line);
    const double sum = pj["probs"]["easy_ham"].get<double>() + pj["probs"]["hard_ham"].get<double>() +
                       pj["probs"]["spam"].get<double>();
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST_F(TasksCli, BaselineAloneOnDebianSections) {
  const RunResult e = run({"classify", "eval", "--baseline", "--baseline-train",
                           data("debian-section.train.jsonl"), "--data",
                           data("debian-section.test.jsonl")});
  ASSERT_EQ(e.status, 0) << report(e);
  const json j = json::parse(e.out);
  EXPECT_EQ(j["labels"], json({"fonts", "games", "python"}));
  // Font, game and Python package descriptions share few words: naive Bayes gets most right.
  EXPECT_GT(j["accuracy"].get<double>(), 0.6);
}

TEST_F(TasksCli, StepsExtendARunToTheWeightsOfOneLongerRun) {
  // A constant lr after warm-up (--min-lr-ratio 1) does not depend on the total steps, so the
  // extended run must end with the weights of the longer one.
  const std::vector<std::string> flat{"--min-lr-ratio", "1", "--warmup", "2"};
  const std::string a = path("a"), b = path("b");
  ASSERT_EQ(train_classifier(a, "tiny-diff", flat, "6").status, 0);
  const RunResult half = train_classifier(b, "tiny-diff", flat, "3");
  ASSERT_EQ(half.status, 0) << report(half);
  // A resume may not change the run; --steps may extend it.
  expect_error_line(run({"classify", "train", "--out", b, "--resume", "--lr", "1"}), "--lr");
  const RunResult rest = run({"classify", "train", "--out", b, "--resume", "--steps", "6"});
  ASSERT_EQ(rest.status, 0) << report(rest);
  for (const char* f : {"classifier.safetensors", "model.safetensors"})
    EXPECT_EQ(read_bytes(fs::path(a) / f), read_bytes(fs::path(b) / f)) << f;
  EXPECT_EQ(read_text(fs::path(a) / "metrics.jsonl").size() > 0, true);
}

TEST_F(TasksCli, ResumeAfterSigkillEqualsUninterruptedRun) {
  const std::vector<std::string> often{"--save-every", "4", "--log-every", "1"};
  const std::string a = path("a"), b = path("b");
  ASSERT_EQ(train_classifier(a, "tiny-diff", often, "40").status, 0);
  std::vector<std::string> args{"classify", "train", "--data", data("spam3.train.jsonl"),
                                "--out", b, "--preset", "tiny-diff", "--seq", "48", "--steps",
                                "40", "--batch", "4", "--lr", "3e-3", "--seed", "1",
                                "--save-every", "4", "--log-every", "1", "--threads", "1"};
  Child c = spawn_difftx(args, dir_, {}, 0, 300);
  // Kill it once it has logged 10 steps (it then has a checkpoint at step 8 at least).
  for (int i = 0; i < 3000; ++i) {
    std::error_code ec;
    if (fs::exists(fs::path(b) / "metrics.jsonl", ec) &&
        line_count(read_text(fs::path(b) / "metrics.jsonl")) >= 10)
      break;
    ::usleep(5000);
  }
  ::kill(c.pid, SIGKILL);
  const RunResult killed = wait_difftx(c);
  if (killed.exited && killed.status == 0) GTEST_SKIP() << "the run finished before the kill";
  ASSERT_EQ(killed.signal, SIGKILL);
  const RunResult rest = run({"classify", "train", "--out", b, "--resume"});
  ASSERT_EQ(rest.status, 0) << report(rest);
  for (const char* f : {"classifier.safetensors", "model.safetensors"})
    EXPECT_EQ(read_bytes(fs::path(a) / f), read_bytes(fs::path(b) / f)) << f;
  // metrics.jsonl tells one history: the lines the killed run logged after its checkpoint are
  // gone, the losses are those of the uninterrupted run.
  std::vector<std::string> la, lb;
  for (const auto& l : lines_of(read_text(fs::path(a) / "metrics.jsonl"))) la.push_back(json::parse(l)["loss"].dump());
  for (const auto& l : lines_of(read_text(fs::path(b) / "metrics.jsonl"))) lb.push_back(json::parse(l)["loss"].dump());
  EXPECT_EQ(la, lb);
}

// SIGTERM (or Ctrl-C) saves the state after the current step and exits 128 + the signal; the
// resume ends with the weights of an uninterrupted run.
TEST_F(TasksCli, SigtermSavesAndResumesToTheUninterruptedWeights) {
  const std::string a = path("ta"), b = path("tb");
  ASSERT_EQ(train_classifier(a, "tiny-diff", {"--save-every", "40"}, "40").status, 0);
  std::vector<std::string> args{"classify", "train", "--data", data("spam3.train.jsonl"),
                                "--out", b, "--preset", "tiny-diff", "--seq", "48", "--steps",
                                "40", "--batch", "4", "--lr", "3e-3", "--seed", "1",
                                "--save-every", "40", "--log-every", "1", "--threads", "1"};
  Child c = spawn_difftx(args, dir_, {}, 0, 300);
  for (int i = 0; i < 3000; ++i) {
    std::error_code ec;
    if (fs::exists(fs::path(b) / "metrics.jsonl", ec) &&
        line_count(read_text(fs::path(b) / "metrics.jsonl")) >= 5)
      break;
    ::usleep(5000);
  }
  ::kill(c.pid, SIGTERM);
  const RunResult stopped = wait_difftx(c);
  ASSERT_TRUE(stopped.exited) << report(stopped);
  if (stopped.status == 0) GTEST_SKIP() << "the run finished before the signal";
  EXPECT_EQ(stopped.status, 128 + SIGTERM) << report(stopped);
  EXPECT_NE(stopped.err.find("interrupted by SIGTERM"), std::string::npos) << stopped.err;
  const RunResult rest = run({"classify", "train", "--out", b, "--resume"});
  ASSERT_EQ(rest.status, 0) << report(rest);
  for (const char* f : {"classifier.safetensors", "model.safetensors"})
    EXPECT_EQ(read_bytes(fs::path(a) / f), read_bytes(fs::path(b) / f)) << f;
}

TEST_F(TasksCli, SummarizeTrainEvalRun) {
  const std::string out = path("sum");
  const RunResult t = run({"summarize", "train", "--data", data("debian-synopsis.train.jsonl"),
                           "--val", data("debian-synopsis.test.jsonl"), "--out", out,
                           "--preset", "tiny-diff", "--max-document-tokens", "48",
                           "--max-summary-tokens", "12", "--steps", "4", "--batch", "4",
                           "--eval-every", "2"});
  ASSERT_EQ(t.status, 0) << report(t);
  EXPECT_TRUE(fs::exists(fs::path(out) / "summarizer.json"));
  const RunResult e = run({"summarize", "eval", "--model", out, "--data",
                           data("debian-synopsis.test.jsonl"), "--lead", "8"});
  ASSERT_EQ(e.status, 0) << report(e);
  const json j = json::parse(e.out);
  for (const char* k : {"rouge1", "rouge2", "rougeL"}) {
    EXPECT_GE(j[k].get<double>(), 0.0) << k;
    EXPECT_LE(j[k].get<double>(), 1.0) << k;
    EXPECT_GE(j["lead"][k].get<double>(), 0.0) << k;
  }
  EXPECT_EQ(j["examples"], 8);
  EXPECT_GT(j["examples_per_s"].get<double>(), 0.0);
  const RunResult r = run({"summarize", "run", "--model", out, "--data",
                           data("debian-synopsis.test.jsonl"), "--temperature", "0.8",
                           "--max-examples", "3"});
  ASSERT_EQ(r.status, 0) << report(r);
  EXPECT_EQ(line_count(r.out), 3u);
  EXPECT_TRUE(json::parse(lines_of(r.out)[0]).contains("summary"));
}

TEST_F(TasksCli, EvaluateComparesTwoModels) {
  const std::string diff = path("diff"), base = path("base");
  ASSERT_EQ(train_classifier(diff, "tiny-diff").status, 0);
  ASSERT_EQ(train_classifier(base, "tiny-llama").status, 0);
  const RunResult e = run({"evaluate", "--model", diff, "--compare", base, "--task", "classify",
                           "--data", data("spam3.test.jsonl"), "--md", path("report.md"),
                           "--attn-examples", "3", "--attn-seq", "32", "--span", "2:8"});
  ASSERT_EQ(e.status, 0) << report(e);
  const json j = json::parse(e.out);
  EXPECT_EQ(j["model"]["model_type"], "diffllama");
  EXPECT_EQ(j["compare"]["model_type"], "llama");
  for (const char* k : {"focus", "coverage", "entropy", "span_attention", "span_noise"})
    EXPECT_TRUE(j["model"]["attention"][k].is_number()) << k;
  EXPECT_GT(j["model"]["attention"]["focus"].get<double>(), 0.0);
  EXPECT_LE(j["model"]["attention"]["coverage"].get<double>(), 1.0);
  for (const char* k : {"examples_per_s", "tokens_per_s", "ms_per_example", "peak_rss_mb"})
    EXPECT_GT(j["model"]["efficiency"][k].get<double>(), 0.0) << k;
  const double acc = j["model"]["metric"]["accuracy"], acc2 = j["compare"]["metric"]["accuracy"];
  EXPECT_EQ(j["relative"]["metric"], "accuracy");
  if (acc2 > 0) EXPECT_NEAR(j["relative"]["metric_percent"].get<double>(), 100 * (acc - acc2) / acc2, 1e-9);
  EXPECT_NEAR(j["relative"]["focus_ratio"].get<double>(),
              j["model"]["attention"]["focus"].get<double>() / j["compare"]["attention"]["focus"].get<double>(), 1e-9);
  const std::string md = read_text(path("report.md"));
  EXPECT_NE(md.find("## Relative"), std::string::npos);
  EXPECT_NE(md.find("| accuracy |"), std::string::npos);

  // The language-model task on plain text, through the classifier's own model files.
  write_text(path("text.txt"), std::string(3000, 'a') + " the end");
  const RunResult lm = run({"evaluate", "--model", diff, "--task", "lm", "--data", path("text.txt"),
                            "--seq", "32", "--cache-dir", path("cache"), "--attn-examples", "2"});
  ASSERT_EQ(lm.status, 0) << report(lm);
  EXPECT_GT(json::parse(lm.out)["model"]["metric"]["loss"].get<double>(), 0.0);
}

TEST_F(TasksCli, BadInputNamesFileAndLineAndLeavesNothing) {
  const std::string good = read_text(data("debian-section.train.jsonl"));
  auto expect_train_error = [&](const std::string& text, const std::string& needle,
                                const std::string& val = "") {
    write_text(path("bad.jsonl"), text);
    std::vector<std::string> args{"classify", "train", "--data", path("bad.jsonl"), "--out",
                                  path("out"), "--preset", "tiny-diff", "--steps", "1"};
    if (!val.empty()) {
      write_text(path("val.jsonl"), val);
      args.insert(args.end(), {"--val", path("val.jsonl")});
    }
    expect_error_line(run(args), needle);
    EXPECT_FALSE(fs::exists(path("out"))) << needle;
  };
  const std::string first = lines_of(good)[0] + "\n";
  expect_train_error(first + first + "{not json\n", "bad.jsonl:3: not JSON");
  expect_train_error(first + "{\"label\": \"games\"}\n", "bad.jsonl:2: missing field \"text\"");
  expect_train_error(first + "{\"text\": \"\", \"label\": \"games\"}\n", "bad.jsonl:2: empty \"text\"");
  expect_train_error(first + "\n" + first, "bad.jsonl:2: empty line");
  expect_train_error(first + first, "1 class(es)");
  expect_train_error(good, "val.jsonl:2: label \"nope\"",
                     first + "{\"text\": \"x\", \"label\": \"nope\"}\n");

  // A label seen only in test data, at evaluation.
  const std::string cls = path("cls");
  ASSERT_EQ(train_classifier(cls).status, 0);
  write_text(path("test.jsonl"), lines_of(read_text(data("spam3.test.jsonl")))[0] +
                                     "\n{\"text\": \"hello\", \"label\": \"phishing\"}\n");
  expect_error_line(run({"classify", "eval", "--model", cls, "--data", path("test.jsonl")}),
                    "test.jsonl:2: label \"phishing\"");
  // A model without a classification head.
  const std::string sum = path("sum");
  ASSERT_EQ(run({"summarize", "train", "--data", data("debian-synopsis.train.jsonl"), "--out", sum,
                 "--preset", "tiny-diff", "--max-document-tokens", "32", "--max-summary-tokens", "8",
                 "--steps", "1"}).status, 0);
  expect_error_line(run({"classify", "eval", "--model", sum, "--data", data("spam3.test.jsonl")}),
                    "has no classification head");
  expect_error_line(run({"summarize", "eval", "--model", cls, "--data",
                         data("debian-synopsis.test.jsonl")}), "is not a summarizer");
  // Nothing half-written: predict on bad data leaves no --out file.
  write_text(path("bad.jsonl"), "{\"text\": \"a\"}\n[]\n");
  expect_error_line(run({"classify", "predict", "--model", cls, "--data", path("bad.jsonl"),
                         "--out", path("pred.jsonl")}), "bad.jsonl:2: not a JSON object");
  EXPECT_FALSE(fs::exists(path("pred.jsonl")));
  // An existing run directory is not overwritten by a new run.
  expect_error_line(train_classifier(cls));
  expect_error_line(run({"evaluate", "--model", cls, "--task", "translate", "--data", "x"}));
  expect_error_line(run({"summarize", "eval", "--data", path("missing.jsonl")}), "missing.jsonl");
}

}  // namespace
