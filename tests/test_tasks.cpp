// The task library: metrics against hand-computed values, SHA-256 against FIPS 180-4
// examples, JSON-lines parsing errors, the classifier's gradients against finite differences,
// the naive Bayes baseline, attention focus/coverage on a hand-made map.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "model/config.h"
#include "tasks/attention_quality.h"
#include "tasks/baseline.h"
#include "tasks/classifier.h"
#include "tasks/metrics.h"
#include "tasks/sha256.h"
#include "tasks/task_data.h"

namespace fs = std::filesystem;
using namespace difftx;

namespace {

TEST(TaskMetrics, ClassificationByHand) {
  // truth a a b b c c, predicted a b b b a c.
  const auto m = classification_metrics({0, 0, 1, 1, 2, 2}, {0, 1, 1, 1, 0, 2}, {"a", "b", "c"});
  EXPECT_EQ(m.examples, 6);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6);
  const std::vector<std::vector<int64_t>> confusion{{1, 1, 0}, {0, 2, 0}, {1, 0, 1}};
  EXPECT_EQ(m.confusion, confusion);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].f1, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 1.0);
  EXPECT_NEAR(m.per_class[1].f1, 0.8, 1e-15);
  EXPECT_DOUBLE_EQ(m.per_class[2].precision, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[2].recall, 0.5);
  EXPECT_NEAR(m.per_class[2].f1, 2.0 / 3, 1e-15);
  EXPECT_NEAR(m.macro_f1, (0.5 + 0.8 + 2.0 / 3) / 3, 1e-15);
  EXPECT_EQ(m.per_class[1].support, 2);
  const auto j = to_json(m);
  EXPECT_EQ(j["confusion"][2][0], 1);
  EXPECT_DOUBLE_EQ(j["per_class"]["b"]["recall"].get<double>(), 1.0);
}

TEST(TaskMetrics, MacroF1SkipsClassesAbsentFromTruthAndPredictions) {
  // Class "d" never occurs: the macro average is over a, b only. A class predicted but never
  // true counts with F1 0.
  const auto m = classification_metrics({0, 1}, {0, 1}, {"a", "b", "d"});
  EXPECT_DOUBLE_EQ(m.macro_f1, 1.0);
  const auto m2 = classification_metrics({0, 0}, {0, 1}, {"a", "b"});
  EXPECT_NEAR(m2.macro_f1, (2.0 / 3 + 0.0) / 2, 1e-15);
  EXPECT_THROW(classification_metrics({0}, {0, 1}, {"a", "b"}), Error);
  EXPECT_THROW(classification_metrics({0}, {2}, {"a", "b"}), Error);
}

TEST(TaskMetrics, RougeTokensAsTheReference) {
  const std::vector<std::string> want{"hello", "world", "it", "s", "2024", "caf"};
  EXPECT_EQ(rouge_tokens("Hello, WORLD! It's 2024.\n caf\xc3\xa9"), want);
  EXPECT_TRUE(rouge_tokens(" ,;!").empty());
}

TEST(TaskMetrics, RougeByHand) {
  // unigrams: 5 of 6 match (the x2, cat, on, mat); bigrams: the cat, on the, the mat = 3 of 5;
  // LCS "the cat on the mat" = 5.
  const auto s = rouge("the cat sat on the mat", "The cat is on the mat.");
  EXPECT_NEAR(s.rouge1, 5.0 / 6, 1e-12);
  EXPECT_NEAR(s.rouge2, 0.6, 1e-12);
  EXPECT_NEAR(s.rougeL, 5.0 / 6, 1e-12);
  // Clipping: "the" matches once. P = 1/3, R = 1/2, F = 0.4.
  EXPECT_NEAR(rouge("the the the", "the cat").rouge1, 0.4, 1e-12);
  // Order matters only for ROUGE-2 and L: reversed words, LCS 1 of 4.
  const auto r = rouge("a b c d", "d c b a");
  EXPECT_NEAR(r.rouge1, 1.0, 1e-12);
  EXPECT_NEAR(r.rouge2, 0.0, 1e-12);
  EXPECT_NEAR(r.rougeL, 0.25, 1e-12);
  // Unequal lengths: cand 2 tokens, ref 4, LCS 2: P 1, R 0.5, F 2/3.
  EXPECT_NEAR(rouge("cat mat", "the cat the mat").rougeL, 2.0 / 3, 1e-12);
  EXPECT_EQ(rouge("", "the cat").rouge1, 0.0);
  EXPECT_EQ(rouge("!!", "").rougeL, 0.0);
  RougeTotals t;
  t.add({1, 0.5, 0.25});
  t.add({0, 0.5, 0.75});
  EXPECT_DOUBLE_EQ(t.mean().rouge1, 0.5);
  EXPECT_DOUBLE_EQ(t.mean().rougeL, 0.5);
}

TEST(TaskMetrics, LeadWords) {
  EXPECT_EQ(lead_words("  one two\nthree\tfour", 3), "one two three");
  EXPECT_EQ(lead_words("one", 5), "one");
  EXPECT_EQ(lead_words("", 5), "");
}

TEST(TaskData, Sha256OfTheStandardExamples) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

class TaskDataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("difftx_task_data_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& text) {
    const fs::path p = dir_ / ("f" + std::to_string(n_++) + ".jsonl");
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  // The message of the Error that reading `text` throws.
  std::string error_of(const std::string& text, bool summaries = false) {
    const std::string p = file(text);
    try {
      if (summaries) read_summarization_data(p);
      else read_classification_data(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
  int n_ = 0;
};

TEST_F(TaskDataFiles, ReadsLinesAndLabels) {
  const auto d = read_classification_data(file("{\"text\": \"a\", \"label\": \"x\"}\n"
                                               "{\"text\": \"b\", \"label\": 3, \"other\": 1}\r\n"));
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[1].label, "3");
  EXPECT_EQ(d.examples[1].line, 2);
  EXPECT_EQ(d.file.sha256.size(), 64u);
  const std::vector<std::string> labels{"3", "x"};
  EXPECT_EQ(class_labels(d), labels);
  EXPECT_EQ(label_indices(d, labels), (std::vector<int>{1, 0}));
}

TEST_F(TaskDataFiles, BadInputNamesFileAndLine) {
  const std::string ok = "{\"text\": \"a\", \"label\": \"x\"}\n";
  EXPECT_NE(error_of(ok + "not json\n").find(".jsonl:2: not JSON"), std::string::npos);
  EXPECT_NE(error_of(ok + "\n" + ok).find(":2: empty line"), std::string::npos);
  EXPECT_NE(error_of(ok + "[1, 2]\n").find(":2: not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(ok + "{\"label\": \"x\"}\n").find(":2: missing field \"text\""), std::string::npos);
  EXPECT_NE(error_of(ok + "{\"text\": \"a\"}\n").find(":2: missing field \"label\""), std::string::npos);
  EXPECT_NE(error_of(ok + "{\"text\": \"\", \"label\": \"x\"}\n").find(":2: empty \"text\""), std::string::npos);
  EXPECT_NE(error_of(ok + "{\"text\": 5, \"label\": \"x\"}\n").find(":2: field \"text\" must be a string"), std::string::npos);
  EXPECT_NE(error_of("").find("no examples"), std::string::npos);
  EXPECT_NE(error_of("{\"document\": \"d\"}\n", true).find(":1: missing field \"summary\""), std::string::npos);
  // Fewer than two classes; a label the model does not know.
  const auto one = read_classification_data(file(ok + ok));
  EXPECT_THROW(class_labels(one), Error);
  const auto other = read_classification_data(file(ok + "{\"text\": \"a\", \"label\": \"y\"}\n"));
  try {
    label_indices(other, {"x", "z"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(":2: label \"y\" is not one of"), std::string::npos) << e.what();
  }
  // Without the need for a label (predict), a missing one is fine.
  EXPECT_EQ(read_classification_data(file("{\"text\": \"a\"}\n"), false).examples.size(), 1u);
}

TEST(TaskBaseline, NaiveBayesByHand) {
  std::vector<TextExample> ex{{"good great fine", "pos", 1}, {"great good", "pos", 2},
                              {"bad awful", "neg", 3}, {"awful terrible bad", "neg", 4}};
  const NaiveBayes nb(ex, {1, 1, 0, 0}, 2);
  EXPECT_EQ(nb.vocabulary(), 6);
  EXPECT_EQ(nb.predict("GREAT, good!"), 1);
  EXPECT_EQ(nb.predict("terrible"), 0);
  EXPECT_EQ(nb.predict("unknown words only"), 0);  // equal priors: the first class
}

TEST(TaskAttention, FocusAndCoverageByHand) {
  // Rows: [1], [0.5 -0.5], [0.05 0.9 0.05]: row maxima 1, 0.5, 0.9 -> focus 0.8;
  // |a| > 0.1 in 1 + 2 + 1 of 6 entries -> coverage 2/3.
  const float map[9] = {1, 0, 0, 0.5f, -0.5f, 0, 0.05f, 0.9f, 0.05f};
  double f = 0, c = 0;
  focus_and_coverage(map, 3, 0.1, &f, &c);
  EXPECT_NEAR(f, (1 + 0.5 + 0.9) / 3, 1e-6);
  EXPECT_NEAR(c, 4.0 / 6, 1e-12);
}

TEST(TaskClassifier, WeightedCrossEntropyByHand) {
  const float logits[4] = {0, 0, 1, 0};  // two rows, two classes
  const int labels[2] = {0, 0};
  const double w[2] = {2, 1};
  float d[4];
  const double l = weighted_cross_entropy(logits, labels, w, 2, 2, d);
  const double l2 = -std::log(std::exp(1.0) / (std::exp(1.0) + 1));
  EXPECT_NEAR(l, (2 * std::log(2.0) + 2 * l2) / 4, 1e-6);
  EXPECT_NEAR(d[0], 0.5 * (0.5 - 1), 1e-6);
  EXPECT_EQ(class_weights({0, 0, 0, 1}, 2, true), (std::vector<double>{4.0 / 6, 2.0}));
}

// The classifier's loss against central finite differences of a few parameters of the model
// and of the head, for both poolings and both heads (dropout 0).
class ClassifierGradients : public ::testing::TestWithParam<std::tuple<Pooling, HeadKind>> {};

TEST_P(ClassifierGradients, MatchFiniteDifferences) {
  const Config cfg = parse_config(
      R"({"model_type": "diffllama", "vocab_size": 257, "hidden_size": 16, "intermediate_size": 24,
          "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 32})",
      "test", LayoutDefaults::kOfficial);
  auto model = std::make_unique<Model>(cfg);
  init_parameters(*model, 5);
  HeadConfig h;
  h.pooling = std::get<0>(GetParam());
  h.kind = std::get<1>(GetParam());
  h.hidden = 8;
  Classifier c = make_classifier(std::move(model), make_byte_tokenizer(), h, {"a", "b", "c"}, 16, 7);
  for (float& p : c.head_params) p *= 20;  // large enough that the head's gradient is not tiny
  const std::vector<std::vector<int32_t>> ids{{5, 9, 200, 3, 7}, {11, 250}, {40, 41, 42}};
  const std::vector<int64_t> idx{0, 1, 2};
  const int y[3] = {2, 0, 1};
  auto loss = [&]() {
    ClassifierPass p;
    classifier_forward(c, ids, idx, p, nullptr);
    return weighted_cross_entropy(p.head.logits.data(), y, nullptr, 3, 3, nullptr);
  };
  ClassifierPass pass;
  Rng rng(1);
  classifier_forward(c, ids, idx, pass, &rng);
  std::vector<float> dlogits(9);
  weighted_cross_entropy(pass.head.logits.data(), y, nullptr, 3, 3, dlogits.data());
  std::vector<float> gm(c.model->layout.total, 0.f), gh(c.head_layout.total, 0.f);
  classifier_backward(c, pass, dlogits.data(), gm.data(), gh.data());
  auto check_param = [&](float* p, float analytic, const std::string& what) {
    // Small against the embedding scale (0.02): RMSNorm makes larger steps nonlinear.
    const float keep = *p, eps = 1e-3f;
    *p = keep + eps;
    const double up = loss();
    *p = keep - eps;
    const double down = loss();
    *p = keep;
    const double numeric = (up - down) / (2 * eps);
    EXPECT_NEAR(analytic, numeric, 2e-3 + 0.05 * std::fabs(numeric)) << what;
  };
  const ParamLayout& L = c.model->layout;
  for (const char* name : {"model.embed_tokens.weight", "model.norm.weight",
                           "model.layers.0.self_attn.q_proj.weight",
                           "model.layers.1.mlp.down_proj.weight"}) {
    const TensorSpec* t = L.find(name);
    ASSERT_NE(t, nullptr) << name;
    // The embedding rows of tokens in the batch (5 and 11), or the first entries.
    for (size_t k : {size_t{0}, size_t{3}, size_t{5 * 16 + 2}, size_t{11 * 16 + 7}}) {
      if (k >= t->numel) continue;
      check_param(c.model->at(t->offset + k), gm[t->offset + k], std::string(name) + "[" + std::to_string(k) + "]");
    }
  }
  for (const TensorSpec& t : c.head_layout.tensors)
    for (size_t k : {size_t{0}, t.numel / 2, t.numel - 1})
      check_param(c.head_params.data() + t.offset + k, gh[t.offset + k], t.name + "[" + std::to_string(k) + "]");
}

INSTANTIATE_TEST_SUITE_P(Heads, ClassifierGradients,
                         ::testing::Combine(::testing::Values(Pooling::kLast, Pooling::kMean),
                                            ::testing::Values(HeadKind::kLinear, HeadKind::kMlp)));

TEST(TaskClassifier, PaddingDoesNotChangeALogit) {
  // A text batched with a longer one (right padding) gets the logits it gets alone.
  const Config cfg = parse_config(
      R"({"model_type": "llama", "vocab_size": 257, "hidden_size": 16, "intermediate_size": 24,
          "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 32})",
      "test", LayoutDefaults::kOfficial);
  for (Pooling pool : {Pooling::kLast, Pooling::kMean}) {
    auto model = std::make_unique<Model>(cfg);
    init_parameters(*model, 2);
    HeadConfig h;
    h.pooling = pool;
    Classifier c = make_classifier(std::move(model), make_byte_tokenizer(), h, {"a", "b"}, 16, 3);
    const std::vector<std::vector<int32_t>> ids{{1, 2, 3}, {4, 5, 6, 7, 8, 9}};
    ClassifierPass alone, both;
    classifier_forward(c, ids, {0}, alone, nullptr);
    classifier_forward(c, ids, {0, 1}, both, nullptr);
    for (int k = 0; k < 2; ++k) EXPECT_NEAR(alone.head.logits[k], both.head.logits[k], 1e-5);
  }
}

}  // namespace
