// RunSettings: range checks that name the field, the train_state "options" round trip with
// type checks, and the resume rules (fixed fields, steps may only grow).
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/run_settings.h"

namespace difftx {
namespace {
using json = nlohmann::json;

RunSettings sample() {
  RunSettings s;
  s.data = "/data/train.txt";
  s.val = "/data/val.txt";
  s.train.steps = 100;
  s.train.batch = 4;
  s.train.seq = 64;
  s.train.seed = 18446744073709551615ull;
  s.train.precision = Precision::kBF16;
  s.train.cosine = false;
  s.attn_stats_every = 5;
  return s;
}

// The field an Error names, and that its message starts with it.
std::string field_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(e.field(), 0), 0u) << e.what();
    return e.field();
  }
  return "(no error)";
}

TEST(RunSettings, ValidateNamesTheFieldOfEachBadValue) {
  const auto bad = [](auto change) {
    RunSettings s = sample();
    change(s);
    return field_of([&] { validate(s); });
  };
  EXPECT_EQ(bad([](RunSettings& s) { s.train.batch = 0; }), "batch");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.batch = 4097; }), "batch");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.seq = 0; }), "seq");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.steps = 0; }), "steps");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.accum = 0; }), "accum");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.lr = 0; }), "lr");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.lr = NAN; }), "lr");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.min_lr_ratio = 1.5; }), "min_lr_ratio");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.weight_decay = -1; }), "weight_decay");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.grad_clip = INFINITY; }), "grad_clip");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.warmup = 101; }), "warmup");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.eval_windows = 0; }), "eval_windows");
  EXPECT_EQ(bad([](RunSettings& s) { s.train.log_every = 0; }), "log_every");
  EXPECT_EQ(bad([](RunSettings& s) { s.attn_stats_every = -1; }), "attn_stats_every");
  EXPECT_EQ(bad([](RunSettings& s) { s.data.clear(); }), "data");
  EXPECT_EQ(bad([](RunSettings&) {}), "(no error)");
}

TEST(RunSettings, JsonRoundTripKeepsEveryField) {
  const RunSettings s = sample();
  const json j = settings_to_json(s);
  for (const char* key : {"data", "val", "tokenizer", "steps", "batch", "seq", "accum", "lr",
                          "min_lr_ratio", "weight_decay", "grad_clip", "warmup", "schedule", "seed",
                          "precision", "save_every", "eval_every", "eval_windows", "log_every",
                          "max_bad_steps", "attn_stats_every"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["warmup"], 5) << "warm-up -1 is stored resolved (5% of steps)";
  const RunSettings back = settings_from_json(j, RunSettings{}, "state");
  EXPECT_EQ(settings_to_json(back), j);
  EXPECT_EQ(back.train.seed, 18446744073709551615ull);
  EXPECT_EQ(back.train.precision, Precision::kBF16);
  EXPECT_FALSE(back.train.cosine);
}

TEST(RunSettings, ReadingAnOlderStateTakesDefaultsAndItsCosineFlag) {
  RunSettings defaults = sample();
  const json old = {{"steps", 40}, {"batch", 2}, {"seq", 32}, {"cosine", true}, {"seed", 7}};
  const RunSettings s = settings_from_json(old, defaults, "state");
  EXPECT_EQ(s.train.steps, 40);
  EXPECT_TRUE(s.train.cosine);
  EXPECT_EQ(s.data, defaults.data) << "a key the old state lacks keeps the default";
}

TEST(RunSettings, MistypedStoredOptionsAreErrorsNamingTheKey) {
  const json good = settings_to_json(sample());
  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
           {"batch", "4"}, {"batch", 2.5}, {"seed", -1}, {"lr", "fast"}, {"data", 3},
           {"schedule", "step"}, {"precision", "fp8"}, {"cosine", 1}, {"steps", 1e300},
           {"batch", 0}, {"seq", 18446744073709551615ull}}) {
    json j = good;
    j[key] = value;
    try {
      settings_from_json(j, RunSettings{}, "r/train_state.safetensors");
      ADD_FAILURE() << key << " = " << value.dump() << " was accepted";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("r/train_state.safetensors"), std::string::npos) << what;
      EXPECT_NE(what.find(key), std::string::npos) << what;
    }
  }
  EXPECT_THROW(settings_from_json(json::array(), RunSettings{}, "x"), Error);
}

TEST(RunSettings, ResumeKeepsStoredValuesAndRefusesChangesThatAlterTheRun) {
  const RunSettings stored = sample();
  RunSettings asked = RunSettings{};  // the CLI's defaults: none given, none compared
  EXPECT_EQ(settings_to_json(merge_for_resume(stored, asked, {}, 50, "r")), settings_to_json(stored));

  asked = stored;
  asked.train.batch = 8;
  asked.train.lr = 0.5;
  for (const char* field : {"batch", "lr"}) {
    try {
      merge_for_resume(stored, asked, {field}, 50, "r");
      ADD_FAILURE() << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.field(), field);
      const std::string what = e.what();
      const json have = settings_to_json(stored)[field], want = settings_to_json(asked)[field];
      EXPECT_NE(what.find(have.dump()), std::string::npos) << what;
      EXPECT_NE(what.find(want.dump()), std::string::npos) << what;
    }
  }
  // Given but equal: fine.
  asked = stored;
  EXPECT_NO_THROW(merge_for_resume(stored, asked, {"batch", "seq", "seed", "data", "precision"}, 50, "r"));
  // Data elsewhere is another run.
  asked.data = "/other.txt";
  EXPECT_EQ(field_of([&] { merge_for_resume(stored, asked, {"data"}, 50, "r"); }), "data");
}

TEST(RunSettings, ResumeMayExtendStepsAndChangeWhatIsOnlySavedOrShown) {
  const RunSettings stored = sample();
  RunSettings asked = stored;
  asked.train.steps = 300;
  asked.train.save_every = 7;
  asked.train.eval_every = 9;
  asked.train.log_every = 3;
  asked.attn_stats_every = 0;
  const RunSettings m = merge_for_resume(
      stored, asked, {"steps", "save_every", "eval_every", "log_every", "attn_stats_every"}, 100, "r");
  EXPECT_EQ(m.train.steps, 300);
  EXPECT_EQ(m.train.save_every, 7);
  EXPECT_EQ(m.train.eval_every, 9);
  EXPECT_EQ(m.train.log_every, 3);
  EXPECT_EQ(m.attn_stats_every, 0);
  EXPECT_EQ(m.train.warmup, 5) << "the warm-up stays what the run started with";
  asked.train.steps = 99;
  EXPECT_EQ(field_of([&] { merge_for_resume(stored, asked, {"steps"}, 100, "r"); }), "steps");
}

}  // namespace
}  // namespace difftx
