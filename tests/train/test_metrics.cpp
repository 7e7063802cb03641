// metrics.jsonl: the three record kinds written and read by the same module, errors naming
// the line, and the resume rule (lines after the checkpoint are dropped).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "test_util.h"
#include "train/metrics.h"

namespace difftx {
namespace {

TEST(Metrics, RecordsRoundTripWithNonFiniteValuesAsNull) {
  StepRecord s{3, NAN, 1e-3, INFINITY, 1234.5, true};
  EvalRecord e{4, 2.5};
  MonitorRecord m;
  m.step = 4;
  m.sparsity = 0.25;
  m.entropy = NAN;
  m.lambda = {0.5, NAN};
  m.hidden_top1 = 17;
  const std::string text = to_json_line(s) + "\n\n" + to_json_line(e) + "\n" + to_json_line(m) + "\n" +
                           "{\"step\": 9, \"something_else\": 1}\n";
  EXPECT_NE(to_json_line(s).find("\"loss\":null"), std::string::npos);
  const MetricsHistory h = parse_metrics_jsonl(text, "m");
  ASSERT_EQ(h.steps.size(), 1u);
  ASSERT_EQ(h.evals.size(), 1u);
  ASSERT_EQ(h.monitors.size(), 1u);
  EXPECT_EQ(h.steps[0].step, 3);
  EXPECT_TRUE(std::isnan(h.steps[0].loss));
  EXPECT_TRUE(std::isnan(h.steps[0].grad_norm));
  EXPECT_DOUBLE_EQ(h.steps[0].lr, 1e-3);
  EXPECT_TRUE(h.steps[0].skipped);
  EXPECT_EQ(h.evals[0].step, 4);
  EXPECT_DOUBLE_EQ(h.evals[0].val_loss, 2.5);
  EXPECT_DOUBLE_EQ(h.monitors[0].sparsity, 0.25);
  EXPECT_TRUE(std::isnan(h.monitors[0].entropy));
  ASSERT_EQ(h.monitors[0].lambda.size(), 2u);
  EXPECT_DOUBLE_EQ(h.monitors[0].lambda[0], 0.5);
  EXPECT_TRUE(std::isnan(h.monitors[0].lambda[1]));
  EXPECT_DOUBLE_EQ(h.monitors[0].hidden_top1, 17);
}

TEST(Metrics, MalformedLinesAreErrorsNamingSourceAndLine) {
  for (const std::string bad : {"{\"step\": 1, \"loss\": \"high\"}", "[1, 2]", "{\"loss\": 1}",
                                "{\"step\": -1, \"loss\": 1}", "{\"step\": 1.5, \"val_loss\": 1}",
                                "{\"step\": 1e400, \"loss\": 1}", "not json",
                                "{\"step\": 2, \"attn_sparsity\": 0, \"lambda\": 3}",
                                "{\"step\": 2, \"loss\": 1, \"skipped\": \"no\"}"}) {
    try {
      parse_metrics_jsonl("{\"step\": 1, \"loss\": 2}\n" + bad + "\n", "runs/a/metrics.jsonl");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("runs/a/metrics.jsonl line 2"), std::string::npos) << e.what();
    }
  }
}

TEST(Metrics, ResumeDropsLinesAfterTheCheckpointAndDamagedOnes) {
  test::TempDir dir;
  {
    MetricsLog log(dir.path().string(), -1);
    for (int64_t s = 1; s <= 6; ++s) log.write(StepRecord{s, 1.0 / s, 1e-3, 1, 10, false});
    log.write(EvalRecord{4, 0.3});
    log.write(EvalRecord{6, 0.2});
  }
  {
    std::ofstream out(dir / "metrics.jsonl", std::ios::app);
    out << "{\"step\": 3, \"loss\": 0.";  // a crash in the middle of a line
  }
  {
    MetricsLog log(dir.path().string(), 4);
    log.write(StepRecord{5, 0.7, 1e-3, 1, 10, false});
  }
  const MetricsHistory h = read_metrics_jsonl(dir.path().string());
  ASSERT_EQ(h.steps.size(), 5u);
  EXPECT_EQ(h.steps.back().step, 5);
  EXPECT_DOUBLE_EQ(h.steps.back().loss, 0.7);
  ASSERT_EQ(h.evals.size(), 1u);
  EXPECT_EQ(h.evals[0].step, 4);
  EXPECT_THROW(read_metrics_jsonl(dir / "nowhere"), Error);
}

}  // namespace
}  // namespace difftx
