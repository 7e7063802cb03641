// The design deck's extensions (docs/variants.md): their ops against central finite
// differences in double, the config keys and their errors, the tensors they add, generation
// (KV cache or recomputation) against full passes, the explicit-map length limit, and
// train / eval / generate / attention of the real program on a tiny model with each one.
// Whole-model gradients are checked against PyTorch in test_golden (the ext_* cases).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "core/error.h"
#include "infer/kv_session.h"
#include "io/checkpoint.h"
#include "kernels/attention.h"
#include "kernels/ext_ops.h"
#include "model/config.h"
#include "model/extensions.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test_util.h"

namespace difftx {
namespace {
using Vec = std::vector<double>;
using json = nlohmann::json;

// Central differences of loss() as each entry of x is perturbed in place.
Vec numeric_gradient(Vec& x, const std::function<double()>& loss) {
  const double h = 1e-6;
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

void expect_gradient(const std::string& what, const Vec& analytic, const Vec& numeric) {
  ASSERT_EQ(analytic.size(), numeric.size()) << what;
  for (size_t i = 0; i < numeric.size(); ++i)
    ASSERT_NEAR(analytic[i], numeric[i], 1e-6 * std::max(1.0, std::abs(numeric[i])))
        << what << "[" << i << "]";
}

TEST(ExtensionOps, GeluGradient) {
  Rng rng(11);
  Vec x = test::random_vector<double>(40, rng, 2.0);
  const Vec r = test::random_vector<double>(40, rng);
  Vec y(40), dx(40);
  auto loss = [&] {
    gelu_forward(x.data(), y.data(), 40);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += r[i] * y[i];
    return s;
  };
  gelu_backward(x.data(), r.data(), dx.data(), 40);
  expect_gradient("dx", dx, numeric_gradient(x, loss));
  // gelu(x) = x Phi(x): a few exact points
  const Vec pts{0.0, 1.0, -1.0};
  Vec out(3);
  gelu_forward(pts.data(), out.data(), 3);
  EXPECT_EQ(out[0], 0.0);
  EXPECT_NEAR(out[1], 0.8413447460685429, 1e-15);
  EXPECT_NEAR(out[2], -0.15865525393145707, 1e-15);
}

struct MapCase {
  int64_t B, T, Pq, Pk, ncomp, d;
};
const MapCase kMapCases[] = {
    {2, 5, 2, 1, 2, 6},  // differential, GQA rep 2
    {1, 7, 4, 2, 1, 4},  // standard, GQA rep 2
    {1, 1, 2, 2, 2, 4},  // one token
};

// Random Q, K, V, lambda of a case, and its reference probability maps.
struct Maps {
  HeadGeometry g;
  Vec Q, K, V, lambda, O;
  AttentionSaved<double> saved;
  explicit Maps(const MapCase& c, uint64_t seed) {
    g.B = c.B, g.T = c.T, g.Pq = c.Pq, g.Pk = c.Pk, g.ncomp = c.ncomp, g.d = c.d;
    Rng rng(seed);
    Q = test::random_vector<double>(g.q_size(), rng);
    K = test::random_vector<double>(g.k_size(), rng);
    V = test::random_vector<double>(g.k_size(), rng);
    lambda = {0.37};
    O.resize(static_cast<size_t>(g.q_size()));
  }
  const double* probs() {
    attention_forward_reference(g, Q.data(), K.data(), V.data(), lambda[0], O.data(), saved);
    return saved.probs.data();
  }
  // Checks the gradient that dE (d loss / d effective maps) sends into Q, K and lambda.
  void expect_map_gradient(const std::string& what, const Vec& dE,
                           const std::function<double()>& loss) {
    Vec dQ(Q.size(), 0.0), dK(K.size(), 0.0);
    const double dl = effective_map_backward(g, Q.data(), K.data(), lambda[0], probs(), dE.data(),
                                             dQ.data(), dK.data());
    expect_gradient(what + " dQ", dQ, numeric_gradient(Q, loss));
    expect_gradient(what + " dK", dK, numeric_gradient(K, loss));
    if (g.ncomp == 2) expect_gradient(what + " dlambda", Vec{dl}, numeric_gradient(lambda, loss));
  }
};

std::string name_of(const MapCase& c) {
  return "B" + std::to_string(c.B) + " T" + std::to_string(c.T) + " Pq" + std::to_string(c.Pq) +
         " Pk" + std::to_string(c.Pk) + " ncomp" + std::to_string(c.ncomp);
}

TEST(ExtensionOps, AttentionMassGradientThroughTheMaps) {
  for (const MapCase& c : kMapCases) {
    Maps m(c, 12);
    Rng rng(13);
    const Vec r = test::random_vector<double>(c.B * c.T, rng);
    Vec mass(r.size());
    auto loss = [&] {
      attention_mass_forward(m.g, m.probs(), m.lambda[0], mass.data());
      double s = 0;
      for (size_t i = 0; i < r.size(); ++i) s += r[i] * mass[i];
      return s;
    };
    Vec dE(static_cast<size_t>(c.B * c.Pq * c.T * c.T), 0.0);
    attention_mass_backward(m.g, r.data(), dE.data());
    m.expect_map_gradient("mass " + name_of(c), dE, loss);
  }
}

TEST(ExtensionOps, AttentionRegulariserGradientThroughTheMaps) {
  for (const MapCase& c : kMapCases) {
    Maps m(c, 14);
    const double beta = 0.7;
    auto loss = [&] { return attention_norm_reg_forward(m.g, m.probs(), m.lambda[0], beta); };
    Vec dE(static_cast<size_t>(c.B * c.Pq * c.T * c.T), 0.0);
    attention_norm_reg_backward(m.g, m.probs(), m.lambda[0], beta, 1.0, dE.data());
    m.expect_map_gradient("regulariser " + name_of(c), dE, loss);
  }
}

// Softmax rows sum to 1, so the L1 term of a standard map is exactly 1 whatever Q and K are
// (no gradient), and a standard map's masses, weighted by how many queries see each token,
// add up to T.
TEST(ExtensionOps, SoftmaxMapsHaveAConstantL1Term) {
  const MapCase c{2, 9, 4, 2, 1, 4};
  for (const uint64_t seed : {1u, 2u, 3u}) {
    Maps m(c, seed);
    EXPECT_NEAR(attention_norm_reg_forward(m.g, m.probs(), 0.0, 0.0), 1.0, 1e-12);
    Vec dE(static_cast<size_t>(c.B * c.Pq * c.T * c.T), 0.0);
    attention_norm_reg_backward(m.g, m.probs(), 0.0, 0.0, 1.0, dE.data());
    Vec dQ(m.Q.size(), 0.0), dK(m.K.size(), 0.0);
    effective_map_backward(m.g, m.Q.data(), m.K.data(), 0.0, m.probs(), dE.data(), dQ.data(),
                           dK.data());
    for (double v : dQ) EXPECT_NEAR(v, 0.0, 1e-12);
    for (double v : dK) EXPECT_NEAR(v, 0.0, 1e-12);
    Vec mass(static_cast<size_t>(c.B * c.T));
    attention_mass_forward(m.g, m.probs(), 0.0, mass.data());
    for (int64_t b = 0; b < c.B; ++b) {
      double s = 0;
      for (int64_t t = 0; t < c.T; ++t) s += static_cast<double>(c.T - t) * mass[b * c.T + t];
      EXPECT_NEAR(s, static_cast<double>(c.T), 1e-12);
    }
  }
}

// --- config keys ---------------------------------------------------------------------------

std::string tiny_json(const std::string& model_type, const std::string& extra, int max_pos = 64) {
  return R"({"model_type": ")" + model_type +
         R"(", "vocab_size": 257, "hidden_size": 16, "intermediate_size": 24,
             "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": )" +
         std::to_string(max_pos) + (extra.empty() ? "" : ", " + extra) + "}";
}

const char* kAllFour =
    R"("ext_token_enhancer": {"reduction": 4}, "ext_noise_reduction": {"threshold": 0.2},
       "ext_flow_gate": true, "ext_attention_loss": {"alpha": 0.1, "beta": 0.5})";

TEST(ExtensionConfig, OffByDefaultAndWrittenExplicitly) {
  const Config c = parse_config(tiny_json("diffllama", ""), "t", LayoutDefaults::kOfficial);
  EXPECT_FALSE(c.ext.any());
  const json j = json::parse(config_to_json(c));
  EXPECT_TRUE(j.at("ext_token_enhancer").is_null());
  EXPECT_TRUE(j.at("ext_noise_reduction").is_null());
  EXPECT_EQ(j.at("ext_flow_gate"), false);
  EXPECT_TRUE(j.at("ext_attention_loss").is_null());
  // null and false mean off too
  const Config off = parse_config(
      tiny_json("llama", R"("ext_token_enhancer": null, "ext_flow_gate": false)"), "t");
  EXPECT_FALSE(off.ext.any());
}

TEST(ExtensionConfig, RoundTrip) {
  const Config c = parse_config(tiny_json("diffllama", kAllFour), "t", LayoutDefaults::kOfficial);
  const Config back = parse_config(config_to_json(c), "t");
  EXPECT_EQ(back.ext.enhancer_reduction, 4);
  EXPECT_EQ(back.ext.noise_threshold, 0.2);
  EXPECT_TRUE(back.ext.flow_gate);
  ASSERT_TRUE(back.ext.attention_loss);
  EXPECT_EQ(back.ext.attention_loss->alpha, 0.1);
  EXPECT_EQ(back.ext.attention_loss->beta, 0.5);
}

// (JSON has no non-finite numbers: nlohmann refuses 1e999 as invalid JSON before any key is
// read; finite_number checks anyway.)
TEST(ExtensionConfig, BadValuesNameTheKey) {
  const struct {
    const char* extra;
    const char* key;
  } cases[] = {
      {R"("ext_token_enhancer": {"reduction": 0})", "ext_token_enhancer.reduction"},
      {R"("ext_token_enhancer": {"reduction": -4})", "ext_token_enhancer.reduction"},
      {R"("ext_token_enhancer": {"reduction": 3})", "ext_token_enhancer.reduction"},
      {R"("ext_token_enhancer": {"reduction": 18446744073709551615})", "ext_token_enhancer.reduction"},
      {R"("ext_token_enhancer": {"reduction": 2.5})", "ext_token_enhancer.reduction"},
      {R"("ext_token_enhancer": {})", "ext_token_enhancer.reduction"},
      {R"("ext_token_enhancer": 4)", "ext_token_enhancer"},
      {R"("ext_noise_reduction": {"threshold": -0.01})", "ext_noise_reduction.threshold"},
      {R"("ext_noise_reduction": {"threshold": 1.5})", "ext_noise_reduction.threshold"},
      {R"("ext_noise_reduction": {"threshold": "high"})", "ext_noise_reduction.threshold"},
      {R"("ext_flow_gate": 1)", "ext_flow_gate"},
      {R"("ext_attention_loss": {"alpha": -1, "beta": 0})", "ext_attention_loss.alpha"},
      {R"("ext_attention_loss": {"alpha": "inf", "beta": 0})", "ext_attention_loss.alpha"},
      {R"("ext_attention_loss": {"alpha": 1, "beta": -0.5})", "ext_attention_loss.beta"},
      {R"("ext_attention_loss": {"alpha": 1, "beta": null})", "ext_attention_loss.beta"},
      {R"("ext_attention_loss": {"alpha": 1})", "ext_attention_loss.beta"},
  };
  for (const char* key : {"ext_token_enhancer", "ext_noise_reduction", "ext_attention_loss"}) {
    // V2's effective map has a lambda per token: the map-reading extensions refuse it
    const std::string extra = std::string("\"") + key + "\": " +
                              (key == std::string("ext_token_enhancer") ? R"({"reduction": 4})"
                               : key == std::string("ext_noise_reduction")
                                   ? R"({"threshold": 0.5})"
                                   : R"({"alpha": 1, "beta": 1})");
    EXPECT_THROW(parse_config(tiny_json("diffllama_v2", extra), "v2.json"), Error) << key;
  }
  EXPECT_TRUE(parse_config(tiny_json("diffllama_v2", R"("ext_flow_gate": true)"), "v2.json")
                  .ext.flow_gate);
  for (const auto& c : cases) {
    try {
      parse_config(tiny_json("diffllama", c.extra), "cfg.json");
      ADD_FAILURE() << "accepted " << c.extra;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + c.key + "\""), std::string::npos)
          << c.extra << " -> " << e.what();
    }
  }
}

// --- tensors -------------------------------------------------------------------------------

TEST(ExtensionTensors, NamedShapedInitialisedSavedAndLoaded) {
  const Config c = parse_config(tiny_json("diffllama", kAllFour), "t", LayoutDefaults::kOfficial);
  const Config plain = parse_config(tiny_json("diffllama", ""), "t", LayoutDefaults::kOfficial);
  Model m(c);
  init_parameters(m, 5);
  const int64_t C = 16;
  const struct {
    std::string name;
    std::vector<int64_t> shape;
  } expected[] = {{"ext.enhancer.down.weight", {4, C}}, {"ext.enhancer.up.weight", {C, 4}},
                  {"ext.noise.norm.weight", {C}},       {"ext.noise.up.weight", {2 * C, C}},
                  {"ext.noise.down.weight", {C, 2 * C}}, {"ext.flow_gate.weight", {C, 2 * C}},
                  {"ext.flow_gate.bias", {C}}};
  size_t added = 0;
  for (int l = 0; l < 2; ++l)
    for (const auto& e : expected) {
      const TensorSpec* t = m.layout.find("model.layers." + std::to_string(l) + "." + e.name);
      ASSERT_NE(t, nullptr) << e.name;
      EXPECT_EQ(t->shape, e.shape) << e.name;
      added += t->numel;
      const float* p = m.at(t->offset);
      double sq = 0;
      for (size_t i = 0; i < t->numel; ++i) sq += static_cast<double>(p[i]) * p[i];
      const double rms = std::sqrt(sq / static_cast<double>(t->numel));
      if (e.name.ends_with("bias")) EXPECT_EQ(rms, 0.0) << e.name;       // gates' biases zero
      else if (e.name.ends_with("norm.weight")) EXPECT_EQ(rms, 1.0) << e.name;
      else EXPECT_NEAR(rms, 0.02, 0.006) << e.name;                       // like every matrix
    }
  // per layer: 2 C C/r + (C + 4 C^2) + (2 C^2 + C)
  EXPECT_EQ(added, 2u * (2 * 16 * 4 + 16 + 4 * 256 + 2 * 256 + 16));
  EXPECT_EQ(m.layout.num_parameters(), Model(plain).layout.num_parameters() + added);
  EXPECT_EQ(count_parameters(m.layout).extension, added);  // what init prints by role

  test::TempDir tmp;
  const std::string dir = (tmp.path() / "m").string();
  save_new_model(dir, m);
  const auto back = load_model(dir);
  EXPECT_EQ(back->config.ext.enhancer_reduction, 4);
  ASSERT_EQ(back->layout.total, m.layout.total);
  for (const auto& t : m.layout.tensors)
    EXPECT_EQ(0, std::memcmp(back->at(t.offset), m.at(t.offset), t.numel * sizeof(float)))
        << t.name;
}

// --- passes: generation, limits ------------------------------------------------------------

std::unique_ptr<Model> tiny_model(const std::string& model_type, const std::string& extra,
                                  int max_pos = 64) {
  auto m = std::make_unique<Model>(
      parse_config(tiny_json(model_type, extra, max_pos), "t", LayoutDefaults::kOfficial));
  init_parameters(*m, 9);
  // Larger weights than the init so that attention, gates and masks vary between tokens.
  Rng rng(10);
  for (const auto& t : m->layout.tensors)
    if (t.kind == ParamKind::kMatrix || t.kind == ParamKind::kEmbedding || t.kind == ParamKind::kBias)
      for (size_t i = 0; i < t.numel; ++i) m->at(t.offset)[i] = static_cast<float>(0.3 * rng.normal());
  return m;
}

// Logits of the last token of `ids`, from one full pass without a cache.
std::vector<float> last_logits(const Model& m, const std::vector<int32_t>& ids) {
  Activations acts;
  PassOptions pass;
  pass.keep = Keep::kNothing;
  pass.logits = LogitRows::kLast;
  forward(m, ids.data(), nullptr, 1, static_cast<int64_t>(ids.size()), acts, {}, pass);
  return acts.logits;
}

const char* kEachExtension[] = {
    R"("ext_token_enhancer": {"reduction": 4})",
    R"("ext_noise_reduction": {"threshold": 0.2})",
    R"("ext_flow_gate": true)",
    R"("ext_attention_loss": {"alpha": 0.5, "beta": 0.5})",
};

// Generation's definition: the logits of each new token are those of a full pass over the
// sequence so far. Flow gate and attention loss decode over the KV cache; the two extensions
// that read the attention mass recompute (infer/kv_session.h). Both must equal full passes,
// for two sequences of different lengths decoded together.
TEST(ExtensionPasses, DecodingEqualsFullRecomputation) {
  for (const char* model_type : {"diffllama", "llama", "diffllama_v2"})
    for (const char* extra : kEachExtension) {
      if (model_type == std::string("diffllama_v2") && extra != kEachExtension[2]) continue;
      SCOPED_TRACE(std::string(model_type) + " " + extra);
      const auto m = tiny_model(model_type, extra);
      std::vector<std::vector<int32_t>> seq{{3, 50, 7, 200, 9}, {11, 12}};
      KvSession session(*m, 16, {}, 2);
      for (int64_t b = 0; b < 2; ++b) {
        const float* got = session.prefill(b, seq[b]);
        const auto want = last_logits(*m, seq[b]);
        EXPECT_LT(test::max_rel_error(got, want.data(), want.size()), 1e-5);
      }
      for (int step = 0; step < 4; ++step) {
        const std::vector<int32_t> next{static_cast<int32_t>(20 + step), static_cast<int32_t>(90 - step)};
        const auto& got = session.decode({0, 1}, next);
        for (int64_t b = 0; b < 2; ++b) {
          seq[b].push_back(next[b]);
          const auto want = last_logits(*m, seq[b]);
          EXPECT_LT(test::max_rel_error(got.data() + b * 257, want.data(), want.size()), 1e-4)
              << "step " << step << " sequence " << b;
        }
        EXPECT_EQ(session.length(0), static_cast<int64_t>(seq[0].size()));
      }
    }
}

// The mass a cached token receives changes with later queries: a pass over a KV cache is
// refused for those extensions, naming the key.
TEST(ExtensionPasses, KvCacheRefusedForTheAttentionMass) {
  for (const char* extra : {kEachExtension[0], kEachExtension[1]}) {
    const auto m = tiny_model("diffllama", extra);
    KvCache cache(m->config, 8, 1);
    PassOptions pass;
    pass.keep = Keep::kNothing;
    pass.cache = &cache;
    Activations acts;
    const std::vector<int32_t> ids{1, 2, 3};
    try {
      forward(*m, ids.data(), nullptr, 1, 3, acts, {}, pass);
      ADD_FAILURE() << "a cached pass was accepted for " << extra;
    } catch (const Error& e) {
      const std::string key = std::string(extra).substr(1, std::string(extra).find('"', 1) - 1);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("KV cache"), std::string::npos) << e.what();
    }
  }
}

// The explicit-map path serves T <= 1024; beyond, the pass is refused naming the key and T.
// ext_attention_loss needs the maps only in training: an evaluation pass runs (fused kernel).
TEST(ExtensionPasses, ExplicitMapsUpTo1024Tokens) {
  const int64_t T = 1025;
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) ids[t] = static_cast<int32_t>(t % 257);
  const auto targets = next_token_targets(ids, 1, T);
  for (const char* extra : kEachExtension) {
    const auto m = tiny_model("diffllama", extra, 2048);
    const std::string key = std::string(extra).substr(1, std::string(extra).find('"', 1) - 1);
    Activations acts;
    PassOptions pass;
    pass.keep = Keep::kNothing;
    if (key == "ext_flow_gate") {
      EXPECT_TRUE(std::isfinite(forward(*m, ids.data(), targets.data(), 1, T, acts, {}, pass)));
      continue;
    }
    if (key == "ext_attention_loss")  // evaluation has no term: no maps, no limit
      EXPECT_TRUE(std::isfinite(forward(*m, ids.data(), targets.data(), 1, T, acts, {}, pass)));
    try {
      forward(*m, ids.data(), targets.data(), 1, T, acts);  // a training pass
      ADD_FAILURE() << "T = 1025 accepted for " << key;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(key), std::string::npos) << what;
      EXPECT_NE(what.find("1025"), std::string::npos) << what;
      EXPECT_NE(what.find("1024"), std::string::npos) << what;
    }
  }
}

// The training loss of ext_attention_loss is cross-entropy + alpha * sum_l R_l (the same model
// without the key has the same tensors); with the fused kernel asked for, the layers still run
// the explicit maps and give the same loss. Evaluation and inference have no term (no maps).
TEST(ExtensionPasses, AttentionLossAddsTheRegulariser) {
  const auto m = tiny_model("diffllama", kEachExtension[3]);
  Model plain(parse_config(tiny_json("diffllama", ""), "t", LayoutDefaults::kOfficial));
  ASSERT_EQ(plain.layout.total, m->layout.total);
  std::copy_n(m->params.data(), m->layout.total, plain.params.data());
  const std::vector<int32_t> ids{5, 9, 100, 3, 77, 42, 8};
  const auto targets = next_token_targets(ids, 1, 7);
  Activations ce_acts;
  const double ce = forward(plain, ids.data(), targets.data(), 1, 7, ce_acts);
  for (const AttentionKernel k : {AttentionKernel::kFlash, AttentionKernel::kReference}) {
    Activations acts;
    RunOptions opts;
    opts.attention = k;
    const double loss = forward(*m, ids.data(), targets.data(), 1, 7, acts, opts);
    EXPECT_TRUE(acts.explicit_maps && acts.attention_loss);
    EXPECT_GT(std::abs(acts.attention_reg), 0.1);
    EXPECT_NEAR(loss, ce + 0.5 * acts.attention_reg, 1e-5);
    // evaluation (a pass that keeps nothing) and inference: cross-entropy only, no maps
    PassOptions eval;
    eval.keep = Keep::kNothing;
    Activations e;
    EXPECT_NEAR(forward(*m, ids.data(), targets.data(), 1, 7, e, opts, eval), ce, 1e-5);
    EXPECT_FALSE(e.attention_loss || e.explicit_maps);
    Activations inference;
    forward(*m, ids.data(), nullptr, 1, 7, inference, opts, eval);
    EXPECT_FALSE(inference.attention_loss || inference.explicit_maps);
  }
}

// --- the program ---------------------------------------------------------------------------

std::string corpus(int n) {
  std::string s;
  const char* words[] = {"the ", "model ", "attends ", "to ", "noise ", "and ", "signal ", ". "};
  uint64_t x = 12345;
  for (int i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    s += words[(x >> 33) % 8];
  }
  return s;
}

class ExtensionCli : public ::testing::TestWithParam<int> {};

// train a few steps, eval, generate and attention with each extension on a tiny model.
TEST_P(ExtensionCli, TrainEvalGenerateAttention) {
  const std::string extra = kEachExtension[GetParam()];
  const std::string key = extra.substr(1, extra.find('"', 1) - 1);
  test::TempDir tmp;
  const auto root = tmp.path();
  cli_test::write_text(root / "cfg.json", tiny_json("diffllama", extra));
  cli_test::write_text(root / "train.txt", corpus(3000));
  cli_test::write_text(root / "val.txt", corpus(800));
  auto run = [&](const std::vector<std::string>& args) {
    return cli_test::run_difftx(args, root, 0, 300);
  };
  const auto train = run({"train", "--config", (root / "cfg.json").string(), "--tokenizer", "byte",
                          "--data", (root / "train.txt").string(), "--out", (root / "run").string(),
                          "--steps", "3", "--batch", "2", "--seq", "16", "--cache-dir",
                          (root / "cache").string(), "--threads", "2"});
  ASSERT_EQ(train.status, 0) << cli_test::report(train);
  const json cfg = json::parse(cli_test::read_text(root / "run" / "config.json"));
  EXPECT_FALSE(cfg.at(key).is_null() || cfg.at(key) == false) << cfg.dump();
  const auto model = load_model((root / "run").string());
  EXPECT_TRUE(model->config.ext.any());

  const auto eval = run({"eval", "--model", (root / "run").string(), "--data",
                         (root / "val.txt").string(), "--seq", "16", "--cache-dir",
                         (root / "cache").string()});
  ASSERT_EQ(eval.status, 0) << cli_test::report(eval);
  EXPECT_TRUE(std::isfinite(json::parse(eval.out).at("loss").get<double>())) << eval.out;

  const auto gen = run({"generate", "--model", (root / "run").string(), "--prompt", "the model",
                        "--max-tokens", "6", "--temperature", "0"});
  ASSERT_EQ(gen.status, 0) << cli_test::report(gen);
  EXPECT_FALSE(gen.out.empty());

  const auto att = run({"attention", "--model", (root / "run").string(), "--text",
                        "the model attends", "--out", (root / "att").string()});
  ASSERT_EQ(att.status, 0) << cli_test::report(att);
  EXPECT_EQ(json::parse(cli_test::read_text(root / "att" / "stats.json")).at("tokens"), 17);
}

INSTANTIATE_TEST_SUITE_P(EachExtension, ExtensionCli, ::testing::Values(0, 1, 2, 3));

// Bad extension values end the program with one error line naming the key and status 2.
TEST(ExtensionCliErrors, InitRefusesBadValues) {
  test::TempDir tmp;
  const struct {
    const char* extra;
    const char* key;
  } cases[] = {{R"("ext_token_enhancer": {"reduction": 0})", "ext_token_enhancer.reduction"},
               {R"("ext_noise_reduction": {"threshold": 2})", "ext_noise_reduction.threshold"},
               {R"("ext_attention_loss": {"alpha": -0.1, "beta": 1})", "ext_attention_loss.alpha"},
               {R"("ext_attention_loss": {"alpha": 0.1, "beta": -1})", "ext_attention_loss.beta"}};
  for (const auto& c : cases) {
    cli_test::write_text(tmp.path() / "bad.json", tiny_json("diffllama", c.extra));
    const auto r = cli_test::run_difftx({"init", "--config", (tmp.path() / "bad.json").string(),
                                         "--out", (tmp.path() / "m").string()},
                                        tmp.path());
    EXPECT_EQ(r.status, 2) << cli_test::report(r);
    EXPECT_EQ(r.err.rfind(cli_test::kErrorPrefix, 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.key), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(tmp.path() / "m"));
  }
}

// A run whose sequences exceed the explicit-map limit is refused before it starts.
TEST(ExtensionCliErrors, TrainRefusesSequencesBeyondTheExplicitMaps) {
  test::TempDir tmp;
  cli_test::write_text(tmp.path() / "cfg.json",
                       tiny_json("diffllama", kEachExtension[0], 2048));
  cli_test::write_text(tmp.path() / "train.txt", corpus(3000));
  const auto r = cli_test::run_difftx(
      {"train", "--config", (tmp.path() / "cfg.json").string(), "--tokenizer", "byte", "--data",
       (tmp.path() / "train.txt").string(), "--out", (tmp.path() / "run").string(), "--steps", "1",
       "--batch", "1", "--seq", "1100", "--cache-dir", (tmp.path() / "cache").string()},
      tmp.path());
  EXPECT_EQ(r.status, 2) << cli_test::report(r);
  EXPECT_NE(r.err.find("--seq"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ext_token_enhancer"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "run"));
}

}  // namespace
}  // namespace difftx
