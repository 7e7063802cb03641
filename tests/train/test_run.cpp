// TrainRun: a new run appears complete and locked, a resume takes the stored settings, a
// second writer is refused, the vocabulary must match the tokenizer, and extending a run with
// more steps gives what one longer run gives.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "model/presets.h"
#include "test_util.h"
#include "train/run.h"

namespace difftx {
namespace {

class Run : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string text;
    for (int i = 0; i < 400; ++i) text += "the state of the union is strong, and peace is law. ";
    std::ofstream(dir_ / "train.txt") << text;
  }
  RunRequest request(const std::string& name, int64_t steps) const {
    RunRequest r;
    r.dir = dir_ / name;
    r.preset = "tiny-llama";
    r.cache_dir = dir_ / "cache";
    r.settings.data = dir_ / "train.txt";
    r.settings.train.steps = steps;
    r.settings.train.batch = 2;
    r.settings.train.seq = 16;
    r.settings.train.warmup = 0;
    r.settings.train.min_lr_ratio = 1.0;  // a constant lr: independent of the total steps
    r.settings.train.save_every = 0;
    r.settings.train.eval_every = 0;
    r.settings.train.seed = 5;
    return r;
  }
  static RunRequest resume_of(const std::string& dir) {
    RunRequest r;
    r.dir = dir;
    r.resume = true;
    return r;
  }
  test::TempDir dir_;
};

TEST_F(Run, NewRunIsCompleteLockedAndResumableWithNoOptions) {
  {
    TrainRun run(request("a", 3));
    for (const char* f : {"config.json", "model.safetensors", "train_state.safetensors",
                          "difftx_tokenizer.json", DirLock::kFileName})
      EXPECT_TRUE(std::filesystem::exists(dir_.path() / "a" / f)) << f;
    EXPECT_THROW(TrainRun second(resume_of(dir_ / "a")), Error) << "the directory is in use";
    EXPECT_TRUE(run.train({}));
  }
  RunRequest again = resume_of(dir_ / "a");
  again.cache_dir = dir_ / "cache";
  TrainRun resumed(again);
  EXPECT_EQ(resumed.step(), 3);
  EXPECT_EQ(settings_to_json(resumed.settings())["data"], (dir_.path() / "train.txt").string());
  EXPECT_EQ(resumed.settings().train.seed, 5u);
  EXPECT_EQ(resumed.settings().train.batch, 2);
}

TEST_F(Run, ExtendingStepsGivesTheLossesOfOneLongerRun) {
  {
    TrainRun longer(request("long", 6));
    ASSERT_TRUE(longer.train({}));
  }
  {
    TrainRun shorter(request("ext", 3));
    ASSERT_TRUE(shorter.train({}));
  }
  RunRequest extend = resume_of(dir_ / "ext");
  extend.cache_dir = dir_ / "cache";
  extend.settings.train.steps = 6;
  extend.given = {"steps"};
  {
    TrainRun run(extend);
    EXPECT_EQ(run.settings().train.steps, 6);
    ASSERT_TRUE(run.train({}));
  }
  const MetricsHistory a = read_metrics_jsonl(dir_ / "long"), b = read_metrics_jsonl(dir_ / "ext");
  ASSERT_EQ(a.steps.size(), 6u);
  ASSERT_EQ(b.steps.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(a.steps[i].loss, b.steps[i].loss) << "step " << i + 1;
  EXPECT_EQ(read_file_bytes(dir_ / "long/model.safetensors"), read_file_bytes(dir_ / "ext/model.safetensors"));
}

TEST_F(Run, VocabularyMustMatchTheTokenizerBothWays) {
  for (int64_t vocab : {200, 300}) {
    const std::string cfg = dir_ / ("c" + std::to_string(vocab) + ".json");
    std::ofstream(cfg) << config_to_json(preset_config("tiny-diff", vocab));
    RunRequest r = request("v" + std::to_string(vocab), 2);
    r.preset.clear();
    r.config_path = cfg;
    try {
      TrainRun run(r);
      ADD_FAILURE() << "vocab_size " << vocab << " was accepted for the byte tokenizer";
    } catch (const Error& e) {
      EXPECT_EQ(e.field(), "vocab_size") << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(r.dir)) << "a failed start leaves no directory";
  }
}

TEST_F(Run, ResumeRefusesAChangedSettingAndAMissingRun) {
  { TrainRun run(request("a", 2)); }
  RunRequest r = request("a", 2);
  r.resume = true;
  r.preset.clear();
  r.settings.train.seq = 32;
  r.given = {"seq"};
  try {
    TrainRun run(r);
    ADD_FAILURE() << "seq changed on resume";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "seq");
    EXPECT_NE(std::string(e.what()).find("16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("32"), std::string::npos) << e.what();
  }
  r.given = {};
  r.preset = "tiny-diff";
  EXPECT_THROW(TrainRun run(r), Error) << "another model";
  EXPECT_THROW(TrainRun run(resume_of(dir_ / "nothing")), Error);
}

}  // namespace
}  // namespace difftx
