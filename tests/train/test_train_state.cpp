// train_state metadata: round trip, and every damaged or mistyped form is an Error naming the
// file (never a JSON library exception).
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/train_state.h"

namespace difftx {
namespace {

TEST(TrainState, MetadataRoundTrips) {
  TrainStateMeta m;
  m.step = 12;
  m.skipped = 1;
  m.adam_steps = 11;
  m.options = {{"batch", 2}};
  m.config = {{"model_type", "diffllama"}};
  const TrainStateMeta back = parse_train_state_meta(train_state_meta_to_text(m), "s");
  EXPECT_EQ(back.step, 12);
  EXPECT_EQ(back.skipped, 1);
  EXPECT_EQ(back.adam_steps, 11);
  EXPECT_EQ(back.options, m.options);
  EXPECT_EQ(back.config, m.config);
  // adam_steps defaults to the step (states of earlier versions).
  EXPECT_EQ(parse_train_state_meta(R"({"step": 5, "config": {}})", "s").adam_steps, 5);
}

TEST(TrainState, DamagedMetadataIsAnErrorNamingTheFile) {
  for (const char* bad : {"", "[]", "{", R"({"config": {}})", R"({"step": 1})",
                          R"({"step": "1", "config": {}})", R"({"step": -3, "config": {}})",
                          R"({"step": 1.5, "config": {}})", R"({"step": 1, "config": []})",
                          R"({"step": 1, "config": {}, "options": 4})",
                          R"({"step": 1, "config": {}, "skipped": true})",
                          R"({"step": 18446744073709551615, "config": {}})"}) {
    try {
      parse_train_state_meta(bad, "r/train_state.safetensors");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("r/train_state.safetensors"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace difftx
