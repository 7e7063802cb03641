// difftx attention: the maps against an independent recomputation from the forward pass's
// Q, K and V; softmax rows and causality; every statistic on hand-made maps with known
// answers; heatmap colours and the report page; and the command end to end, bad input included
// (exit status 2, one error line, nothing left behind).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/attention_maps.h"
#include "analysis/attention_stats.h"
#include "analysis/heatmap.h"
#include "analysis/report_html.h"
#include "cli_util.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "model/config.h"
#include "test_util.h"
#include "tiny_model.h"

namespace difftx {
namespace {
using test::TempDir;

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kGolden = std::string(DIFFTX_SOURCE_DIR) + "/tests/golden/";

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return t;
}

// ------------------------------------------------------------------ maps vs recomputation

// Row i of softmax(q k^T / sqrt(d)) over keys 0..i, in double, from one map's q and k [T, d].
std::vector<double> softmax_row(const float* q, const float* k, int64_t i, int64_t d) {
  std::vector<double> s(static_cast<size_t>(i + 1));
  double mx = -1e300, sum = 0;
  for (int64_t j = 0; j <= i; ++j) {
    double dot = 0;
    for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[i * d + e]) * k[j * d + e];
    s[j] = dot / std::sqrt(static_cast<double>(d));
    mx = std::max(mx, s[j]);
  }
  for (auto& x : s) sum += (x = std::exp(x - mx));
  for (auto& x : s) x /= sum;
  return s;
}

class MapsTest : public ::testing::TestWithParam<std::string> {};

// Softmax maps recomputed in double from the Q and K the forward pass used (query head h reads
// key group h / rep), lambda from the checkpoint's four vectors, and the effective map checked
// against what the model actually did with it: (A1 - lambda A2) V equals the attention output.
TEST_P(MapsTest, EqualIndependentRecomputation) {
  const auto model = load_model(kGolden + GetParam());
  const Config& c = model->config;
  const int64_t T = 13, B = 2;
  const auto tokens = random_tokens(B * T, c.vocab_size, 7);
  // A training pass (every activation kept) with the hook recording: the maps come from the
  // record, Q, K, V and the attention output from the activations of the same pass.
  Activations acts;
  ForwardRecord rec;
  RunOptions run;
  run.attention = AttentionKernel::kReference;
  PassOptions pass;
  pass.observer = &rec;
  forward(*model, tokens.data(), nullptr, B, T, acts, run, pass);
  const int64_t P = c.query_heads(), Pk = c.kv_groups(), nc = c.ncomp(), d = c.head_dim;
  const int64_t dv = nc * d;
  for (int64_t b = 0; b < B; ++b) {
    const AttentionMaps maps = extract_attention_maps(c, rec, b);
    ASSERT_EQ(maps.diff, c.is_diff());
    ASSERT_EQ(maps.layers.size(), static_cast<size_t>(c.num_hidden_layers));
    for (size_t l = 0; l < maps.layers.size(); ++l) {
      const LayerActivations& a = acts.layers[l];
      const LayerMaps& m = maps.layers[l];
      ASSERT_EQ(m.heads, P);
      double lambda = 0;
      if (c.is_diff()) {
        const auto vec = [&](const char* which) {
          const std::string name = "model.layers." + std::to_string(l) + ".self_attn." + which;
          return model->at(model->layout.find(name)->offset);
        };
        double dot1 = 0, dot2 = 0;
        for (int64_t e = 0; e < d; ++e) {
          dot1 += static_cast<double>(vec("lambda_q1")[e]) * vec("lambda_k1")[e];
          dot2 += static_cast<double>(vec("lambda_q2")[e]) * vec("lambda_k2")[e];
        }
        lambda = std::exp(dot1) - std::exp(dot2) + c.lambda_init(static_cast<int64_t>(l));
        EXPECT_NEAR(m.lambda, lambda, 1e-5);
      }
      for (int64_t h = 0; h < P; ++h) {
        const int64_t g = h / (P / Pk);
        std::vector<double> eff(static_cast<size_t>(T * T), 0.0);
        for (int64_t cmp = 0; cmp < nc; ++cmp) {
          const float* q = a.Q.data() + (((b * P + h) * nc + cmp) * T) * d;
          const float* k = a.K.data() + (((b * Pk + g) * nc + cmp) * T) * d;
          const std::vector<float>& got = !c.is_diff() ? m.attn : cmp == 0 ? m.attn1 : m.attn2;
          for (int64_t i = 0; i < T; ++i) {
            const std::vector<double> s = softmax_row(q, k, i, d);
            for (int64_t j = 0; j < T; ++j) {
              const double want = j <= i ? s[j] : 0.0;
              EXPECT_NEAR(got[(h * T + i) * T + j], want, 2e-6) << "layer " << l << " head " << h;
              eff[i * T + j] += (cmp == 0 ? 1.0 : -lambda) * want;
            }
          }
        }
        for (int64_t k = 0; k < T * T; ++k) EXPECT_NEAR(m.attn[h * T * T + k], eff[k], 4e-6);
        // The effective map is the one the model multiplied V with.
        const float* v = a.V.data() + (b * Pk + g) * T * dv;
        for (int64_t i = 0; i < T; ++i)
          for (int64_t e = 0; e < dv; ++e) {
            double o = 0;
            for (int64_t j = 0; j <= i; ++j) o += eff[i * T + j] * v[j * dv + e];
            const float got = a.attn_pre[(b * T + i) * (P * dv) + h * dv + e];
            EXPECT_NEAR(got, o, 1e-5 * (1 + std::abs(o)));
          }
      }
    }
  }
}

// Every row of A1 and A2 (or of the softmax map) sums to 1 and is zero above the diagonal; a
// differential effective row sums to 1 - lambda (V2: 1 - the lambda of that query token).
void expect_rows_sum_to_one_and_causal(const AttentionMaps& maps, int64_t T) {
  for (const LayerMaps& m : maps.layers) {
    std::vector<const std::vector<float>*> all = {&m.attn};
    if (maps.diff) all = {&m.attn1, &m.attn2, &m.attn};
    for (const std::vector<float>* v : all) {
      ASSERT_EQ(v->size(), static_cast<size_t>(m.heads * T * T));
      for (int64_t h = 0; h < m.heads; ++h)
        for (int64_t i = 0; i < T; ++i) {
          double sum = 0;
          for (int64_t j = 0; j < T; ++j) {
            const float x = (*v)[(h * T + i) * T + j];
            if (j > i) EXPECT_EQ(x, 0.f) << "nonzero above the diagonal";
            sum += x;
          }
          const double lambda =
              m.token_lambda.empty() ? m.lambda : m.token_lambda[static_cast<size_t>(h * T + i)];
          EXPECT_NEAR(sum, v == &m.attn ? 1.0 - lambda : 1.0, 1e-5);
        }
    }
  }
}

TEST_P(MapsTest, RowsSumToOneAndAreCausal) {
  const auto model = load_model(kGolden + GetParam());
  const int64_t T = 17;
  expect_rows_sum_to_one_and_causal(
      compute_attention_maps(*model, random_tokens(T, model->config.vocab_size, 3)), T);
}

// DIFF V2: the maps of sub-heads 2h and 2h+1 recomputed in double from the pass's Q and K
// (sub-head j reads kv head j / (2n / kv)), lambda[t, h] = sigmoid(xn1 W_lambda^T) from the
// checkpoint, and the effective map times V equal to the pair-combined attention output.
class MapsV2Test : public ::testing::TestWithParam<std::string> {};

TEST_P(MapsV2Test, EqualIndependentRecomputation) {
  const auto model = load_model(kGolden + GetParam());
  const Config& c = model->config;
  ASSERT_TRUE(c.is_diff_v2());
  const int64_t T = 11, B = 2, n = c.num_attention_heads, d = c.head_dim, C = c.hidden_size;
  const int64_t Pq = 2 * n, Pk = c.num_key_value_heads;
  const auto tokens = random_tokens(B * T, c.vocab_size, 5);
  Activations acts;
  ForwardRecord rec;
  RunOptions run;
  run.attention = AttentionKernel::kReference;
  PassOptions pass;
  pass.observer = &rec;
  forward(*model, tokens.data(), nullptr, B, T, acts, run, pass);
  for (int64_t b = 0; b < B; ++b) {
    const AttentionMaps maps = extract_attention_maps(c, rec, b);
    ASSERT_TRUE(maps.diff);
    expect_rows_sum_to_one_and_causal(maps, T);
    for (size_t l = 0; l < maps.layers.size(); ++l) {
      const LayerActivations& a = acts.layers[l];
      const LayerMaps& m = maps.layers[l];
      ASSERT_EQ(m.heads, n);
      const float* W = model->at(
          model->layout.find("model.layers." + std::to_string(l) + ".self_attn.lambda_proj.weight")
              ->offset);
      for (int64_t h = 0; h < n; ++h) {
        std::vector<double> lam(static_cast<size_t>(T));
        for (int64_t i = 0; i < T; ++i) {
          double z = 0;
          for (int64_t e = 0; e < C; ++e) z += static_cast<double>(a.xn1[(b * T + i) * C + e]) * W[h * C + e];
          lam[i] = 1.0 / (1.0 + std::exp(-z));
          EXPECT_NEAR(m.token_lambda[h * T + i], lam[i], 1e-6);
        }
        std::vector<double> eff(static_cast<size_t>(T * T), 0.0);
        for (int64_t cmp = 0; cmp < 2; ++cmp) {
          const int64_t j = 2 * h + cmp, g = j / (Pq / Pk);
          const float* q = a.Q.data() + ((b * Pq + j) * T) * d;
          const float* k = a.K.data() + ((b * Pk + g) * T) * d;
          const std::vector<float>& got = cmp == 0 ? m.attn1 : m.attn2;
          for (int64_t i = 0; i < T; ++i) {
            const std::vector<double> s = softmax_row(q, k, i, d);
            for (int64_t t = 0; t <= i; ++t) {
              EXPECT_NEAR(got[(h * T + i) * T + t], s[t], 2e-6);
              eff[i * T + t] += (cmp == 0 ? 1.0 : -lam[i]) * s[t];
            }
          }
        }
        for (int64_t k = 0; k < T * T; ++k) EXPECT_NEAR(m.attn[h * T * T + k], eff[k], 4e-6);
        // (A1 - lambda A2) V is the combined output o_proj reads; both sub-heads share one V.
        const int64_t g = (2 * h) / (Pq / Pk);
        const float* v = a.V.data() + ((b * Pk + g) * T) * d;
        for (int64_t i = 0; i < T; ++i)
          for (int64_t e = 0; e < d; ++e) {
            double o = 0;
            for (int64_t t = 0; t <= i; ++t) o += eff[i * T + t] * v[t * d + e];
            EXPECT_NEAR(a.attn_out[(b * T + i) * n * d + h * d + e], o, 1e-5 * (1 + std::abs(o)));
          }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, MapsV2Test,
                         ::testing::Values("diffv2_rope_gptj", "diffv2_gqa_rope_half",
                                           "diffv2_gqa_rope_gptj_tied"));

INSTANTIATE_TEST_SUITE_P(Golden, MapsTest,
                         ::testing::Values("diff_interleaved_affine", "diff_split_noaffine",
                                           "diff_gqa", "diff_split_gqa_tied", "llama_baseline",
                                           "diff_no_groupnorm", "diff_lambda_init_const",
                                           "llama_groupnorm"));

TEST(AttentionMaps, ActivationsAreTheForwardPassValues) {
  const auto model = load_model(kGolden + "diff_gqa");
  const Config& c = model->config;
  const int64_t T = 9;
  const auto tokens = random_tokens(T, c.vocab_size, 11);
  Activations acts;
  ForwardRecord rec;
  RunOptions run;
  run.attention = AttentionKernel::kReference;
  PassOptions pass;
  pass.observer = &rec;
  forward(*model, tokens.data(), nullptr, 1, T, acts, run, pass);
  // Hidden states leaving layer 0 = entering layer 1; leaving the last = the final stream.
  std::vector<float> h0, h1;
  append_abs_hidden_states(c, rec, 0, 0, h0);
  append_abs_hidden_states(c, rec, 1, 0, h1);
  ASSERT_EQ(h0.size(), acts.layers[1].x_in.size());
  for (size_t k = 0; k < h0.size(); ++k) EXPECT_EQ(h0[k], std::abs(acts.layers[1].x_in[k]));
  for (size_t k = 0; k < h1.size(); ++k) EXPECT_EQ(h1[k], std::abs(acts.x_final[k]));
  // Logits: one per causal pair, head and map; softmax of the signed logits would give A1, so
  // the largest |logit| bounds the log-ratio of any two probabilities in a row.
  std::vector<float> logits;
  append_abs_attention_logits(c, rec, 0, 0, logits);
  EXPECT_EQ(logits.size(), static_cast<size_t>(c.query_heads() * 2 * T * (T + 1) / 2));
  const AttentionMaps maps = extract_attention_maps(c, rec, 0);
  const double top = magnitude_statistics(logits).top1;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j)
      EXPECT_LE(std::abs(std::log(maps.layers[0].attn1[i * T + j] / maps.layers[0].attn1[i * T])),
                2 * top + 1e-4);
}

TEST(AttentionMaps, NeedTheReferenceKernel) {
  const auto model = load_model(kGolden + "diff_interleaved_affine");
  const auto tokens = random_tokens(5, model->config.vocab_size, 1);
  Activations acts;
  ForwardRecord rec;
  PassOptions pass;
  pass.observer = &rec;
  // flash: no maps to record
  EXPECT_THROW(forward(*model, tokens.data(), nullptr, 1, 5, acts, {}, pass), Error);
  EXPECT_THROW(extract_attention_maps(model->config, rec, 0), Error);
}

// ---------------------------------------------------------------- statistics, known answers

TEST(AttentionStats, OneHotDiagonal) {
  const int64_t T = 4;
  std::vector<float> m(T * T, 0.f);
  for (int64_t i = 0; i < T; ++i) m[i * T + i] = 1.f;
  const MapStats s = map_statistics(m.data(), T, {});
  EXPECT_DOUBLE_EQ(s.sparsity, 0.6);  // 6 of the 10 causal entries are 0
  EXPECT_DOUBLE_EQ(s.focus, 0.4);
  EXPECT_DOUBLE_EQ(s.entropy, 0.0);
  EXPECT_DOUBLE_EQ(s.mean_abs, 0.4);
  EXPECT_DOUBLE_EQ(s.max, 1.0);
  EXPECT_DOUBLE_EQ(s.negative_share, 0.0);
}

TEST(AttentionStats, UniformCausal) {
  const int64_t T = 4;
  std::vector<float> m(T * T, 0.f);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j) m[i * T + j] = 1.f / static_cast<float>(i + 1);
  const MapStats s = map_statistics(m.data(), T, {});
  EXPECT_DOUBLE_EQ(s.sparsity, 0.0);
  EXPECT_DOUBLE_EQ(s.focus, 0.1);  // only row 0's 1.0 exceeds 0.5
  EXPECT_NEAR(s.entropy, (std::log(1.0) + std::log(2.0) + std::log(3.0) + std::log(4.0)) / 4, 1e-6);
  EXPECT_NEAR(s.mean_abs, 0.4, 1e-7);
  EXPECT_DOUBLE_EQ(s.max, 1.0);
  MapStatOptions o;
  o.threshold = 0.3;  // 0.25 x 4 now count as small
  EXPECT_DOUBLE_EQ(map_statistics(m.data(), T, o).sparsity, 0.4);
}

TEST(AttentionStats, DifferentialMapWithNegatives) {
  const int64_t T = 3;
  const std::vector<float> m = {1.0f, 0, 0, 0.8f, -0.2f, 0, 0.6f, -0.3f, 0.05f};
  const MapStats s = map_statistics(m.data(), T, {});
  EXPECT_NEAR(s.sparsity, 1.0 / 6, 1e-12);  // 0.05
  EXPECT_NEAR(s.focus, 3.0 / 6, 1e-12);     // 1.0, 0.8, 0.6
  const double p = 0.6 / 0.65, q = 0.05 / 0.65;
  EXPECT_NEAR(s.entropy, (0 + 0 - p * std::log(p) - q * std::log(q)) / 3, 1e-6);
  EXPECT_NEAR(s.mean_abs, 2.95 / 6, 1e-6);
  EXPECT_DOUBLE_EQ(s.max, 1.0);
  EXPECT_NEAR(s.negative_share, 0.5 / 2.95, 1e-6);
  // A row with no positive entry has no entropy; a map made only of such rows has none at all.
  const std::vector<float> neg = {-0.5f};
  EXPECT_TRUE(std::isnan(map_statistics(neg.data(), 1, {}).entropy));
  EXPECT_DOUBLE_EQ(map_statistics(neg.data(), 1, {}).negative_share, 1.0);
}

TEST(AttentionStats, SpanAttentionAndNoise) {
  const int64_t T = 5;
  std::vector<float> m(T * T, 0.f);
  // Span [1, 3): query rows 3 and 4.
  const float row3[] = {0.1f, 0.3f, 0.4f, 0.2f};
  const float row4[] = {0.1f, 0.1f, 0.1f, 0.1f, 0.6f};
  std::copy(row3, row3 + 4, m.begin() + 3 * T);
  std::copy(row4, row4 + 5, m.begin() + 4 * T);
  SpanStats s = span_statistics(m.data(), T, {1, 3});
  EXPECT_EQ(s.rows, 2);
  EXPECT_NEAR(s.attention, (0.7 + 0.2) / 2, 1e-6);
  EXPECT_NEAR(s.noise, (0.3 + 0.8) / 2, 1e-6);
  EXPECT_NEAR(s.attention_raw, s.attention, 1e-6);
  // A differential row: negative entries count against the span and as noise by magnitude;
  // the normalisation divides by the row's total |a| (here 0.5).
  const float diff3[] = {-0.05f, 0.3f, 0.1f, 0.05f};
  const float diff4[] = {0.0f, 0.2f, -0.1f, 0.0f, 0.2f};
  std::copy(diff3, diff3 + 4, m.begin() + 3 * T);
  std::copy(diff4, diff4 + 5, m.begin() + 4 * T);
  s = span_statistics(m.data(), T, {1, 3});
  EXPECT_NEAR(s.attention, (0.4 / 0.5 + 0.1 / 0.5) / 2, 1e-6);
  EXPECT_NEAR(s.noise, (0.1 / 0.5 + 0.2 / 0.5) / 2, 1e-6);
  EXPECT_NEAR(s.attention_raw, (0.4 + 0.1) / 2, 1e-6);
  EXPECT_NEAR(s.noise_raw, (0.1 + 0.2) / 2, 1e-6);
  // rows_from: only the last query row (the needle experiment's answer position).
  s = span_statistics(m.data(), T, {1, 3, 4});
  EXPECT_EQ(s.rows, 1);
  EXPECT_NEAR(s.attention, 0.1 / 0.5, 1e-6);
  EXPECT_NEAR(s.noise, 0.2 / 0.5, 1e-6);
  EXPECT_EQ(span_statistics(m.data(), T, {1, 3, 0}).rows, 2);  // before the span's end: from it
}

TEST(AttentionStats, ParseSpan) {
  EXPECT_EQ(parse_span("2:5", 8).start, 2);
  EXPECT_EQ(parse_span("2:5", 8).end, 5);
  EXPECT_EQ(parse_span("0:7", 8).end, 7);
  for (const char* bad : {"3", "a:b", "3:3", "5:2", "-1:2", "2:8", "2:9", ":4", "2:", "1:2:3", " 1:2"})
    EXPECT_THROW(parse_span(bad, 8), Error) << bad;
}

TEST(AttentionStats, Magnitudes) {
  std::vector<float> v;
  for (int k = 1; k <= 200; ++k) v.push_back(k % 2 ? static_cast<float>(k) : -static_cast<float>(k));
  const MagnitudeStats s = magnitude_statistics(v);
  EXPECT_EQ(s.count, 200);
  EXPECT_EQ(s.top1, 200);
  EXPECT_EQ(s.top2, 199);
  EXPECT_EQ(s.top3, 198);
  EXPECT_EQ(s.top10, 191);
  EXPECT_EQ(s.top100, 101);
  EXPECT_DOUBLE_EQ(s.median, 100.5);
  const MagnitudeStats few = magnitude_statistics({-3.f, 1.f, 2.f});
  EXPECT_EQ(few.top1, 3);
  EXPECT_DOUBLE_EQ(few.median, 2);
  EXPECT_TRUE(std::isnan(few.top10));
  EXPECT_TRUE(std::isnan(magnitude_statistics({}).median));
}

// Batch statistics are the average of each sequence's; the JSON and the monitoring record have
// the documented layout.
TEST(AttentionStats, BatchFromModelAndJson) {
  const auto model = load_model(kGolden + "diff_interleaved_affine");
  const int64_t T = 10;
  const auto tokens = random_tokens(2 * T, model->config.vocab_size, 5);
  StatisticsOptions o;
  o.span = Span{2, 4};
  o.activations = true;
  const AttentionStatistics both = attention_statistics(*model, tokens.data(), 2, T, o);
  const AttentionStatistics s0 = attention_statistics(*model, tokens.data(), 1, T, o);
  const AttentionStatistics s1 = attention_statistics(*model, tokens.data() + T, 1, T, o);
  ASSERT_EQ(both.layers.size(), 2u);
  ASSERT_EQ(both.layers[0].heads.size(), 2u);
  for (size_t l = 0; l < 2; ++l)
    for (size_t h = 0; h < 2; ++h) {
      // A share of weights beyond a threshold: a weight at the threshold may land on either
      // side when the batch of 2 is multiplied in other blocks than a batch of 1 (the last bit
      // differs with oneDNN's kernel choice), so allow one entry of the T (T + 1) / 2.
      EXPECT_NEAR(both.layers[l].heads[h].sparsity,
                  (s0.layers[l].heads[h].sparsity + s1.layers[l].heads[h].sparsity) / 2,
                  1.0 / static_cast<double>(T * (T + 1) / 2) + 1e-12);
      EXPECT_NEAR(both.layers[l].span_heads[h].attention,
                  (s0.layers[l].span_heads[h].attention + s1.layers[l].span_heads[h].attention) / 2,
                  1e-6);  // float32 passes: a batch of 2 rounds differently from a batch of 1
    }
  EXPECT_EQ(both.logits.top1, std::max(s0.logits.top1, s1.logits.top1));
  EXPECT_EQ(both.hidden.count, s0.hidden.count + s1.hidden.count);

  const auto j = json::parse(statistics_to_json(both).dump());
  EXPECT_EQ(j["model_type"], "diffllama");
  EXPECT_EQ(j["tokens"], T);
  EXPECT_EQ(j["sequences"], 2);
  EXPECT_EQ(j["span"]["start"], 2);
  ASSERT_EQ(j["layers"].size(), 2u);
  for (const char* key : {"sparsity", "focus", "entropy", "mean_abs", "max", "negative_share"})
    EXPECT_TRUE(j["layers"][1]["heads"][0][key].is_number()) << key;
  EXPECT_TRUE(j["layers"][0]["lambda"].is_number());
  EXPECT_TRUE(j["layers"][0]["heads"][1]["span"]["noise"].is_number());
  for (const char* key : {"top1", "top2", "top3", "top10", "top100", "median"}) {
    EXPECT_TRUE(j["activations"]["attention_logits"][key].is_number()) << key;
    EXPECT_TRUE(j["activations"]["hidden_states"][key].is_number()) << key;
  }
}

// ------------------------------------------------------------------------ heatmap and page

TEST(Heatmap, DivergingColoursAndLabels) {
  const auto eq = [](Rgb c, int r, int g, int b) { return c.r == r && c.g == g && c.b == b; };
  EXPECT_TRUE(eq(diverging_colour(0), 247, 247, 247));
  EXPECT_TRUE(eq(diverging_colour(1), 103, 0, 31));
  EXPECT_TRUE(eq(diverging_colour(-1), 5, 48, 97));
  EXPECT_TRUE(eq(diverging_colour(7), 103, 0, 31));  // clamped
  EXPECT_GT(diverging_colour(0.5).r, diverging_colour(0.5).b);   // positive: red
  EXPECT_GT(diverging_colour(-0.5).b, diverging_colour(-0.5).r); // negative: blue
  EXPECT_EQ(token_label(" the"), "_the");
  EXPECT_EQ(token_label("\n"), "\\n");
  EXPECT_EQ(token_label("caf\xc3\xa9"), "caf?");
  EXPECT_EQ(token_label("extraordinarily"), "extrao..");
}

TEST(Heatmap, RendersTheMapWithScaleAndLabels) {
  const int64_t T = 3;
  const std::vector<float> m = {0.5f, 0, 0, 0.25f, 0.25f, 0, -0.5f, 0.5f, 0.5f};
  const Image img = render_heatmap(m.data(), T, {"a", "b", "c"}, "test");
  ASSERT_GT(img.width, 100);
  ASSERT_EQ(img.rgb.size(), static_cast<size_t>(img.width * img.height * 3));
  // The darkest red (value = the scale's maximum) and the darkest blue are both present.
  bool red = false, blue = false;
  for (size_t k = 0; k < img.rgb.size(); k += 3) {
    red |= img.rgb[k] == 103 && img.rgb[k + 1] == 0 && img.rgb[k + 2] == 31;
    blue |= img.rgb[k] == 5 && img.rgb[k + 1] == 48 && img.rgb[k + 2] == 97;
  }
  EXPECT_TRUE(red);
  EXPECT_TRUE(blue);
  const Image grid = render_head_grid(m.data(), 1, T, "grid");
  EXPECT_GT(grid.width, 100);
  const auto png = encode_png(img);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png[1], 'P');
}

TEST(Report, SelfContainedPageWithEscapedData) {
  const auto model = load_model(kGolden + "llama_baseline");
  const std::vector<int32_t> ids = {1, 2, 3, 4};
  const AttentionMaps maps = compute_attention_maps(*model, ids);
  ReportModel rm{"base<line>", &maps, {"a", "</script>", "b\n", "\xff"}, ids, {}};
  rm.stats = statistics_to_json(statistics_from_forward(model->config, [&] {
    ForwardRecord rec;
    run_reference_forward(*model, ids.data(), 1, 4, rec);
    return rec;
  }(), {}));
  const std::string page = render_report_html({rm}, "title <x>");
  // One data block, one script: a token "</script>" cannot end either.
  size_t n = 0;
  for (size_t at = page.find("</script>"); at != std::string::npos; at = page.find("</script>", at + 1)) ++n;
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_NE(page.find("<title>title &lt;x&gt;</title>"), std::string::npos);
  const size_t a = page.find("id=\"difftx-data\">") + 17, b = page.find("</script>", a);
  const auto data = json::parse(page.substr(a, b - a));
  EXPECT_EQ(data["models"][0]["name"], "base<line>");
  EXPECT_EQ(data["models"][0]["tokens"][1], "</script>");
  const auto& tri = data["models"][0]["layers"][1]["maps"]["attn"][2];
  ASSERT_EQ(tri.size(), 10u);  // lower triangle of 4 x 4
  EXPECT_NEAR(tri[4].get<double>(), maps.layers[1].attn[2 * 16 + 2 * 4 + 1], 1e-4);
}

// ------------------------------------------------------------------------------ the command

using cli_test::expect_error_line;
using cli_test::run_difftx;


std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir)) s.insert(e.path().string());
  return s;
}

// A byte-tokenizer differential model with a 16-token context, for --text.
fs::path make_text_model(const fs::path& dir) {
  test::TinyModel t;
  t.max_positions = 16;
  return test::make_tiny_model(dir, t);
}

TEST(AttentionCommand, WritesEveryFile) {
  TempDir tmp;
  const fs::path out = tmp.path() / "out";
  const auto r = run_difftx({"attention", "--model", kGolden + "diff_interleaved_affine",
                             "--tokens", "1,5,9,3,7,2,30,11,4,8", "--out", out.string(),
                             "--span", "3:6", "--activations", "--compare",
                             kGolden + "llama_baseline", "--threshold", "0.05"},
                            tmp.path());
  ASSERT_EQ(r.status, 0) << cli_test::report(r);
  EXPECT_TRUE(r.err.empty()) << r.err;
  const int64_t T = 10;
  for (const char* f : {"maps.safetensors", "stats.json", "report.html", "heatmaps/layer_0.png",
                        "heatmaps/layer_0_heads.png", "heatmaps/layer_1.png",
                        "heatmaps/layer_1_heads.png", "compare/maps.safetensors",
                        "compare/stats.json", "compare/heatmaps/layer_1_heads.png"})
    EXPECT_GT(fs::file_size(out / f), 100u) << f;
  for (const auto& e : fs::recursive_directory_iterator(out))
    if (e.path().extension() == ".png") {
      const auto b = cli_test::read_bytes(e.path());
      EXPECT_EQ(std::string(b.begin() + 1, b.begin() + 4), "PNG") << e.path();
    }

  // The maps written equal the library's, for both models.
  const auto diff_model = load_model(kGolden + "diff_interleaved_affine");
  const std::vector<int32_t> ids = {1, 5, 9, 3, 7, 2, 30, 11, 4, 8};
  const AttentionMaps want = compute_attention_maps(*diff_model, ids);
  const auto st = SafetensorsFile::read((out / "maps.safetensors").string());
  for (int l = 0; l < 2; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    const StTensor* attn = st.find(p + "attn");
    ASSERT_NE(attn, nullptr);
    EXPECT_EQ(attn->shape, (std::vector<int64_t>{2, T, T}));
    EXPECT_EQ(st.to_float(*attn), want.layers[l].attn);
    EXPECT_EQ(st.to_float(*st.find(p + "attn1")), want.layers[l].attn1);
    EXPECT_EQ(st.to_float(*st.find(p + "attn2")), want.layers[l].attn2);
    EXPECT_EQ(st.to_float(*st.find(p + "lambda"))[0], want.layers[l].lambda);
  }
  const auto cmp = SafetensorsFile::read((out / "compare/maps.safetensors").string());
  EXPECT_EQ(cmp.find("layers.0.attn")->shape, (std::vector<int64_t>{4, T, T}));
  EXPECT_EQ(cmp.find("layers.0.attn1"), nullptr);

  const auto stats = json::parse(cli_test::read_text(out / "stats.json"));
  EXPECT_EQ(stats["model"], "diff_interleaved_affine");
  EXPECT_EQ(stats["threshold"], 0.05);
  EXPECT_EQ(stats["token_ids"].size(), 10u);
  EXPECT_EQ(stats["span"]["end"], 6);
  EXPECT_EQ(stats["layers"][0]["heads"].size(), 2u);
  EXPECT_TRUE(stats["layers"][1]["heads"][1]["span"]["attention"].is_number());
  EXPECT_TRUE(stats["activations"]["attention_logits"]["top100"].is_number());
  EXPECT_TRUE(stats["activations"]["hidden_states"]["median"].is_number());
  const auto cstats = json::parse(cli_test::read_text(out / "compare/stats.json"));
  EXPECT_EQ(cstats["model_type"], "llama");
  EXPECT_EQ(cstats["layers"][0]["heads"].size(), 4u);
  const std::string page = cli_test::read_text(out / "report.html");
  EXPECT_NE(page.find("\"llama_baseline\""), std::string::npos);
}

TEST(AttentionCommand, TextThroughTheModelsTokenizer) {
  TempDir tmp;
  const fs::path model = make_text_model(tmp.path() / "model");
  const fs::path out = tmp.path() / "out";
  const auto r = run_difftx({"attention", "--model", model.string(), "--text", "Hello, world",
                             "--out", out.string()},
                            tmp.path());
  ASSERT_EQ(r.status, 0) << cli_test::report(r);
  const auto stats = json::parse(cli_test::read_text(out / "stats.json"));
  EXPECT_EQ(stats["tokens"], 12);
  EXPECT_EQ(stats["token_text"][0], "H");
  EXPECT_FALSE(stats.contains("span"));
  EXPECT_FALSE(stats.contains("activations"));
}

struct BadCase {
  std::string name;
  std::vector<std::string> args;  // after "attention"; MODEL, OUT, FILE are replaced
  std::string needle;
};

TEST(AttentionCommand, BadInputFailsCleanly) {
  TempDir tmp;
  const fs::path model = make_text_model(tmp.path() / "model");
  const std::string golden = kGolden + "diff_interleaved_affine";
  cli_test::write_text(tmp.path() / "afile", "x");
  fs::create_directories(tmp.path() / "full");
  cli_test::write_text(tmp.path() / "full" / "keep.txt", "keep");
  const std::string out = (tmp.path() / "out").string();
  const std::string m = model.string();
  const std::vector<BadCase> cases = {
      {"text longer than the context", {"--model", m, "--text", "seventeen bytes!!", "--out", out},
       "context"},
      {"tokens longer than the context",
       {"--model", m, "--tokens", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "--out", out},
       "context"},
      {"span past the end", {"--model", m, "--text", "Hello", "--span", "2:9", "--out", out},
       "outside the text"},
      {"span ending at the last token", {"--model", m, "--text", "Hello", "--span", "2:5", "--out", out},
       "outside the text"},
      {"empty span", {"--model", m, "--text", "Hello", "--span", "3:3", "--out", out}, "--span"},
      {"span not a range", {"--model", m, "--text", "Hello", "--span", "x", "--out", out}, "--span"},
      {"out under a file", {"--model", m, "--text", "Hello", "--out", (tmp.path() / "afile" / "o").string()},
       ""},
      {"out not empty", {"--model", m, "--text", "Hello", "--out", (tmp.path() / "full").string()},
       "not empty"},
      {"text without a tokenizer", {"--model", golden, "--text", "Hello", "--out", out}, "--tokens"},
      {"empty text", {"--model", m, "--text", "", "--out", out}, "empty"},
      {"no input", {"--model", m, "--out", out}, "--text"},
      {"text and tokens", {"--model", m, "--text", "a", "--tokens", "1", "--out", out}, ""},
      {"token out of range", {"--model", golden, "--tokens", "1,99", "--out", out}, "out of range"},
      {"zero threshold", {"--model", m, "--text", "Hello", "--threshold", "0", "--out", out},
       "--threshold"},
      {"missing compare model",
       {"--model", m, "--text", "Hello", "--compare", (tmp.path() / "nope").string(), "--out", out},
       "nope"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    const auto before = listing(tmp.path());
    std::vector<std::string> args = {"attention"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto r = run_difftx(args, tmp.path());
    expect_error_line(r, c.needle);
    EXPECT_EQ(listing(tmp.path()), before) << "the failed run left files behind";
  }
}

}  // namespace
}  // namespace difftx
