// End-to-end tests of the difftx program (SPEC section 3). For every bad input the real binary
// must exit with status 2, print exactly one line "difftx: error: <message>" on stderr, not die
// of a signal, and leave nothing behind: the test's directory is compared before and after,
// so a half-written --out file or a stray temporary file fails the test.
//
// Each test runs in its own fresh directory under the system temp dir (removed afterwards).
// Bad models are made from a good one: either written by `difftx init` from a tiny config
// ("init", F32) or a copy of the golden case diff_bf16_weights ("bf16").
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cli_util.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace cli_test;

namespace {

const fs::path kGoldenDir = fs::path(DIFFTX_SOURCE_DIR) / "tests" / "golden";

// The "init" base model: vocab 32, hidden 16, 4 heads (head_dim 4), max 8 positions.
constexpr int kTinyVocab = 32;
constexpr int kTinyMaxPositions = 8;
json tiny_config() {
  return {{"model_type", "diffllama"},
          {"vocab_size", kTinyVocab},
          {"hidden_size", 16},
          {"intermediate_size", 24},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"max_position_embeddings", kTinyMaxPositions}};
}

// ------------------------------------------------------------------------------ files

uint64_t get_u64le(const std::vector<uint8_t>& b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b.at(static_cast<size_t>(i));
  return n;
}
void put_u64le(std::vector<uint8_t>& b, uint64_t n) {
  for (size_t i = 0; i < 8; ++i) b.at(i) = static_cast<uint8_t>(n >> (8 * i));
}

// A safetensors file as header JSON + data section, for editing: load, patch, save (the
// header length is recomputed on save).
struct Safetensors {
  json header;
  std::vector<uint8_t> data;

  static Safetensors load(const fs::path& p) {
    const auto b = read_bytes(p);
    const uint64_t n = get_u64le(b);
    Safetensors s;
    s.header = json::parse(b.begin() + 8, b.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    s.data.assign(b.begin() + 8 + static_cast<std::ptrdiff_t>(n), b.end());
    return s;
  }
  // 8-byte length + header text + data, with arbitrary (possibly invalid) header text.
  static std::vector<uint8_t> assemble(const std::string& header_text,
                                       const std::vector<uint8_t>& data) {
    std::vector<uint8_t> b(8 + header_text.size() + data.size());
    put_u64le(b, header_text.size());
    std::copy(header_text.begin(), header_text.end(), b.begin() + 8);
    std::copy(data.begin(), data.end(),
              b.begin() + 8 + static_cast<std::ptrdiff_t>(header_text.size()));
    return b;
  }
  void save(const fs::path& p) const { write_bytes(p, assemble(header.dump(), data)); }

  // Appends an F32 tensor at the end of the data section.
  void add_f32(const std::string& name, const std::vector<int64_t>& shape, float value) {
    size_t n = 1;
    for (int64_t s : shape) n *= static_cast<size_t>(s);
    const size_t begin = data.size();
    data.resize(begin + 4 * n);
    for (size_t i = 0; i < n; ++i) std::memcpy(data.data() + begin + 4 * i, &value, 4);
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, data.size()}}};
  }
};

// Loads path, lets fn edit it, saves it back.
void edit_safetensors(const fs::path& p, const std::function<void(Safetensors&)>& fn) {
  Safetensors s = Safetensors::load(p);
  fn(s);
  s.save(p);
}
void edit_bytes(const fs::path& p, const std::function<void(std::vector<uint8_t>&)>& fn) {
  auto b = read_bytes(p);
  fn(b);
  write_bytes(p, b);
}

// Every file and directory under root with its size and a content hash: compared before and
// after a failing run to prove nothing was written, left behind or damaged.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    if (e.is_directory() && !e.is_symlink()) {
      m[rel] = "dir";
    } else {
      const auto b = read_bytes(e.path());
      m[rel] = std::to_string(b.size()) + " bytes, hash " +
               std::to_string(std::hash<std::string>()(std::string(b.begin(), b.end())));
    }
  }
  return m;
}
std::string describe(const std::map<std::string, std::string>& snap) {
  std::string s;
  for (const auto& [k, v] : snap) s += "  " + k + " (" + v + ")\n";
  return s.empty() ? "  (empty)\n" : s;
}

std::vector<int64_t> shape_of(const json& header, const std::string& name) {
  return header.at(name).at("shape").get<std::vector<int64_t>>();
}

std::string join_ids(int n, int id) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(id);
  return s;
}

// ------------------------------------------------------------------------------ fixture

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "difftx-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    root_ = templ;
    work_ = root_ / "work";
    fs::create_directory(work_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  RunResult run(const std::vector<std::string>& args, uint64_t address_space_limit = 0) {
    return run_difftx(args, root_, address_space_limit);
  }

  // A good model in work_/model: "init" (written by difftx init from tiny_config()) or the
  // name of a golden case (copied).
  fs::path make_model(const std::string& base) {
    const fs::path dir = work_ / "model";
    if (base == "init") {
      const fs::path cfg = root_ / "tiny_config.json";
      write_text(cfg, tiny_config().dump(2));
      const RunResult r =
          run({"init", "--config", cfg.string(), "--out", dir.string(), "--seed", "7"});
      EXPECT_TRUE(r.exited && r.status == 0) << report(r);
    } else {
      fs::create_directory(dir);
      for (const char* f : {"config.json", "model.safetensors"})
        fs::copy_file(kGoldenDir / base / f, dir / f);
    }
    return dir;
  }

  // Runs args, expecting the error contract and no change at all under work_.
  void expect_clean_failure(const std::vector<std::string>& args, const std::string& needle = "",
                            uint64_t address_space_limit = 0) {
    const auto before = snapshot(work_);
    const RunResult r = run(args, address_space_limit);
    expect_error_line(r, needle);
    const auto after = snapshot(work_);
    EXPECT_EQ(before, after) << "the failing run changed its directory\nbefore:\n"
                             << describe(before) << "after:\n"
                             << describe(after) << report(r);
  }

  fs::path root_, work_;  // work_ holds the test's inputs and --out paths
};

// ------------------------------------------------------------------------------ bad configs
// Each case turns a valid config (JSON) into the text of a bad config.json. The same table is
// used for `init --config` and for `inspect --model` on a model whose config.json is replaced.

struct ConfigCase {
  std::string name;
  std::function<std::string(json)> make;
  std::string needle;  // the message must mention this ("" = any message)
};

ConfigCase set_key(std::string name, std::string key, json value) {
  return {std::move(name),
          [key, value](json j) {
            j[key] = value;
            return j.dump();
          },
          key};
}
ConfigCase with_keys(std::string name, json patch, std::string needle,
                     std::vector<std::string> erase = {}) {
  return {std::move(name),
          [patch, erase](json j) {
            for (const auto& k : erase) j.erase(k);
            j.update(patch);
            return j.dump();
          },
          std::move(needle)};
}
// Text that is not a usable JSON object: the message must name the file.
ConfigCase raw_text(std::string name, std::string text) {
  return {std::move(name), [text](json) { return text; }, "config.json"};
}

std::vector<ConfigCase> config_cases() {
  std::vector<ConfigCase> v = {
      raw_text("invalid_json", "{\"model_type\": \"diffllama\", \"vocab_size\": "),
      raw_text("empty_file", ""),
      raw_text("not_object_array", "[1, 2, 3]"),
      raw_text("not_object_number", "42"),
      raw_text("not_object_string", "\"diffllama\""),
      raw_text("not_object_null", "null"),
      raw_text("number_overflow", "{\"model_type\": \"diffllama\", \"rms_norm_eps\": 1e400}"),
      set_key("hidden_size_string", "hidden_size", "64"),
      set_key("hidden_size_fraction", "hidden_size", 64.5),
      set_key("hidden_size_bool", "hidden_size", true),
      set_key("hidden_size_negative", "hidden_size", -16),
      set_key("hidden_size_zero", "hidden_size", 0),
      set_key("hidden_size_null", "hidden_size", nullptr),
      set_key("hidden_size_over_int32", "hidden_size", 4294967296LL),
      set_key("vocab_size_negative", "vocab_size", -1),
      set_key("num_hidden_layers_zero", "num_hidden_layers", 0),
      set_key("model_type_unknown", "model_type", "gpt2"),
      set_key("model_type_number", "model_type", 5),
      with_keys("diff_odd_heads",
                {{"num_attention_heads", 3}, {"num_key_value_heads", 3}, {"head_dim", 4}},
                "num_attention_heads"),
      with_keys("diff_odd_kv_heads",
                {{"num_attention_heads", 4}, {"num_key_value_heads", 1}, {"head_dim", 4}},
                "num_key_value_heads"),
      with_keys("kv_heads_not_dividing",
                {{"num_attention_heads", 8}, {"num_key_value_heads", 6}, {"head_dim", 4}},
                "num_key_value_heads"),
      with_keys("heads_not_dividing_hidden",
                {{"hidden_size", 16}, {"num_attention_heads", 6}, {"num_key_value_heads", 6}},
                "num_attention_heads", {"head_dim"}),
      with_keys("odd_head_dim",
                {{"num_attention_heads", 4}, {"num_key_value_heads", 4}, {"head_dim", 5}},
                "head_dim"),
      with_keys("huge_vocab_and_hidden", {{"vocab_size", 2000000000}, {"hidden_size", 2000000000}},
                ""),
      with_keys(
          "huge_but_each_dim_valid",
          {{"hidden_size", 100000}, {"intermediate_size", 400000}, {"num_hidden_layers", 100}}, ""),
      set_key("attention_bias_true", "attention_bias", true),
      set_key("mlp_bias_true", "mlp_bias", true),
      set_key("hidden_act_gelu", "hidden_act", "gelu"),
      set_key("rope_scaling_unsupported", "rope_scaling", {{"type", "yarn"}, {"factor", 2.0}}),
      set_key("attention_dropout_positive", "attention_dropout", 0.1),
      set_key("rms_norm_eps_zero", "rms_norm_eps", 0.0),
      set_key("rope_theta_negative", "rope_theta", -1.0),
      set_key("max_positions_zero", "max_position_embeddings", 0),
      set_key("tie_embeddings_string", "tie_word_embeddings", "yes"),
      set_key("diff_head_layout_unknown", "diff_head_layout", "diagonal"),
      set_key("lambda_std_dev_negative", "lambda_std_dev", -0.5),
  };
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "model_type"})
    v.push_back({std::string("missing_") + key,
                 [k = std::string(key)](json j) {
                   j.erase(k);
                   return j.dump();
                 },
                 key});
  return v;
}

// -- init --config BAD: no output directory (or temporary directory) may appear.
class InitBadConfig : public Cli, public ::testing::WithParamInterface<ConfigCase> {};

TEST_P(InitBadConfig, FailsCleanly) {
  const fs::path cfg = work_ / "config.json";
  write_text(cfg, GetParam().make(tiny_config()));
  const fs::path out = work_ / "new_model";
  expect_clean_failure({"init", "--config", cfg.string(), "--out", out.string()},
                       GetParam().needle);
  EXPECT_FALSE(fs::exists(out));
}

// ------------------------------------------------------------------------------ bad model dirs
// Each case damages a good model directory; `inspect` on it must fail cleanly. Every case runs
// on both bases (F32 from init, BF16 golden copy).

struct DirCase {
  std::string name;
  std::function<void(const fs::path& model_dir)> damage;
  std::string needle;
};

const char* const kNorm = "model.norm.weight";  // present in every model
const char* const kGate = "model.layers.0.mlp.gate_proj.weight";

DirCase st_case(std::string name, std::function<void(Safetensors&)> fn, std::string needle = "") {
  return {std::move(name),
          [fn](const fs::path& d) { edit_safetensors(d / "model.safetensors", fn); },
          std::move(needle)};
}
DirCase bytes_case(std::string name, std::function<void(std::vector<uint8_t>&)> fn) {
  return {std::move(name), [fn](const fs::path& d) { edit_bytes(d / "model.safetensors", fn); },
          ""};
}
DirCase header_text_case(std::string name, std::string header_text) {
  return bytes_case(std::move(name), [header_text](std::vector<uint8_t>& b) {
    const uint64_t n = get_u64le(b);
    const std::vector<uint8_t> data(b.begin() + 8 + static_cast<std::ptrdiff_t>(n), b.end());
    b = Safetensors::assemble(header_text, data);
  });
}
// Replaces the data_offsets [b, e] of model.norm.weight by fn(b, e).
using Offs = std::vector<json>;
DirCase offsets_case(std::string name, std::function<Offs(int64_t b, int64_t e)> fn) {
  return st_case(
      std::move(name),
      [fn](Safetensors& s) {
        json& off = s.header.at(kNorm).at("data_offsets");
        off = fn(off[0].get<int64_t>(), off[1].get<int64_t>());
      },
      kNorm);
}
DirCase shifted_offsets(std::string name, int64_t db, int64_t de) {
  return offsets_case(std::move(name), [db, de](int64_t b, int64_t e) {
    return json{b + db, e + de};
  });
}
DirCase field_case(std::string name, std::string tensor, std::string field, json value) {
  return st_case(
      std::move(name), [=](Safetensors& s) { s.header.at(tensor)[field] = value; }, tensor);
}

std::vector<DirCase> dir_cases() {
  std::vector<DirCase> v = {
      {"no_model_dir", [](const fs::path& d) { fs::remove_all(d); }, ""},
      {"model_dir_is_file",
       [](const fs::path& d) {
         fs::remove_all(d);
         write_text(d, "x");
       },
       ""},
      {"no_config", [](const fs::path& d) { fs::remove(d / "config.json"); }, "config.json"},
      {"no_weights", [](const fs::path& d) { fs::remove(d / "model.safetensors"); },
       "model.safetensors"},
      {"config_is_dir",
       [](const fs::path& d) {
         fs::remove(d / "config.json");
         fs::create_directory(d / "config.json");
       },
       "config.json"},
      {"weights_is_dir",
       [](const fs::path& d) {
         fs::remove(d / "model.safetensors");
         fs::create_directory(d / "model.safetensors");
       },
       "model.safetensors"},
      bytes_case("weights_empty", [](std::vector<uint8_t>& b) { b.clear(); }),
      bytes_case("weights_5_bytes", [](std::vector<uint8_t>& b) { b.resize(5); }),
      bytes_case("truncated_in_data",
                 [](std::vector<uint8_t>& b) {
                   const uint64_t n = get_u64le(b);
                   b.resize(8 + n + (b.size() - 8 - n) / 2);
                 }),
      bytes_case("truncated_in_header",
                 [](std::vector<uint8_t>& b) { b.resize(8 + get_u64le(b) / 2); }),
      bytes_case("truncated_after_header",
                 [](std::vector<uint8_t>& b) { b.resize(8 + get_u64le(b)); }),
      bytes_case("header_length_past_eof", [](std::vector<uint8_t>& b) { put_u64le(b, b.size()); }),
      bytes_case("header_length_max", [](std::vector<uint8_t>& b) { put_u64le(b, UINT64_MAX); }),
      bytes_case("header_length_zero", [](std::vector<uint8_t>& b) { put_u64le(b, 0); }),
      header_text_case("header_not_json", "this is not JSON at all"),
      header_text_case("header_binary", std::string("\xff\xfe\x00\x01\x80", 5)),
      header_text_case("header_array", "[1, 2, 3]"),
      header_text_case("header_string", "\"model.norm.weight\""),
      header_text_case("header_tensor_not_object", "{\"model.norm.weight\": 5}"),
      header_text_case("header_metadata_not_object", "{\"__metadata__\": [1]}"),
      shifted_offsets("offsets_outside_data", 1000000, 1000000),
      shifted_offsets("offsets_end_past_data", 0, 1000000),
      shifted_offsets("offsets_short_of_shape", 0, -4),
      shifted_offsets("offsets_long_for_shape", -4, 0),
      // clang-format off
      offsets_case("offsets_begin_after_end", [](int64_t b, int64_t e) { return Offs{e, b}; }),
      offsets_case("offsets_negative", [](int64_t, int64_t e) { return Offs{-4, e}; }),
      offsets_case("offsets_three", [](int64_t b, int64_t e) { return Offs{b, e, e}; }),
      offsets_case("offsets_fraction", [](int64_t b, int64_t e) { return Offs{b + 0.5, e}; }),
      offsets_case("offsets_huge", [](int64_t, int64_t) { return Offs{~0ULL - 1, ~0ULL}; }),
      // clang-format on
      field_case("dtype_F64", kNorm, "dtype", "F64"),
      field_case("dtype_I8", kNorm, "dtype", "I8"),
      field_case("dtype_XYZ", kNorm, "dtype", "XYZ"),
      field_case("dtype_number", kNorm, "dtype", 32),
      field_case("shape_negative", kNorm, "shape", {-16}),
      field_case("shape_not_array", kNorm, "shape", 16),
      field_case("shape_overflowing", kNorm, "shape",
                 {4294967296ULL, 4294967296ULL, 4294967296ULL}),
      st_case(
          "missing_tensor", [](Safetensors& s) { s.header.erase(kNorm); }, kNorm),
      st_case(
          "missing_lm_head", [](Safetensors& s) { s.header.erase("lm_head.weight"); },
          "lm_head.weight"),
      st_case(
          "wrong_shape_same_size",
          [](Safetensors& s) {
            const int64_t n = shape_of(s.header, kNorm)[0];
            s.header[kNorm]["shape"] = {n / 4, 4};
          },
          kNorm),
      st_case(
          "wrong_shape_transposed",
          [](Safetensors& s) {
            auto sh = shape_of(s.header, kGate);
            std::reverse(sh.begin(), sh.end());
            s.header[kGate]["shape"] = sh;
          },
          kGate),
      st_case(
          "wrong_shape_scalar",
          [](Safetensors& s) {
            // [] is one element: point it at the first 4 bytes of the tensor.
            const uint64_t b = s.header[kNorm]["data_offsets"][0].get<uint64_t>();
            s.header[kNorm]["shape"] = json::array();
            s.header[kNorm]["dtype"] = "F32";
            s.header[kNorm]["data_offsets"] = {b, b + 4};
          },
          kNorm),
  };
  // Every bad config also breaks inspect, through the model's own config.json.
  for (const ConfigCase& c : config_cases())
    v.push_back({"config_" + c.name,
                 [make = c.make](const fs::path& d) {
                   write_text(d / "config.json", make(json::parse(read_text(d / "config.json"))));
                 },
                 c.needle});
  return v;
}

class InspectBadModel : public Cli,
                        public ::testing::WithParamInterface<std::tuple<DirCase, std::string>> {};

TEST_P(InspectBadModel, FailsCleanly) {
  const auto& [c, base] = GetParam();
  const fs::path model = make_model(base);
  ASSERT_FALSE(HasFailure());
  c.damage(model);
  const fs::path out = work_ / "out.safetensors";
  expect_clean_failure(
      {"inspect", "--model", model.string(), "--tokens", "1,2,3", "--out", out.string(), "--grads"},
      c.needle);
  EXPECT_FALSE(fs::exists(out));
}

// ------------------------------------------------------------------------------ bad tokens

struct TokenCase {
  std::string name;
  std::string tokens;
};

std::vector<TokenCase> token_cases() {
  return {
      {"letter", "1,a,3"},
      {"empty_item", "1,,3"},
      {"negative", "-1"},
      {"fraction", "1.5"},
      {"empty_list", ""},
      {"blank_list", "  "},
      {"trailing_comma", "1,2,"},
      {"leading_comma", ",1,2"},
      {"plus_sign", "+1"},
      {"hex", "0x10"},
      {"space_separated", "1 2 3"},
      {"equal_to_vocab", std::to_string(kTinyVocab)},
      {"far_out_of_range", "1," + std::to_string(kTinyVocab + 1000)},
      {"beyond_int32", "4294967296"},
      {"beyond_int64", "99999999999999999999999"},
      {"longer_than_max_positions", join_ids(kTinyMaxPositions + 1, 1)},
  };
}

class InspectBadTokens : public Cli, public ::testing::WithParamInterface<TokenCase> {};

TEST_P(InspectBadTokens, FailsCleanly) {
  const fs::path model = make_model("init");
  ASSERT_FALSE(HasFailure());
  const fs::path out = work_ / "out.safetensors";
  expect_clean_failure(
      {"inspect", "--model", model.string(), "--tokens", GetParam().tokens, "--out", out.string()});
  EXPECT_FALSE(fs::exists(out));
}

// ------------------------------------------------------------------------------ bad flags

// Arguments with placeholders: $MODEL (a good model), $CONFIG (a good config), $OUT (a path
// that does not exist).
struct FlagCase {
  std::string name;
  std::vector<std::string> args;
};

std::vector<FlagCase> flag_cases() {
  return {
      {"no_command", {}},
      {"unknown_command", {"frobnicate", "--model", "$MODEL", "--out", "$OUT"}},
      {"inspect_unknown_flag",
       {"inspect", "--model", "$MODEL", "--tokens", "1,2", "--out", "$OUT", "--bogus"}},
      {"inspect_missing_model", {"inspect", "--tokens", "1,2", "--out", "$OUT"}},
      {"inspect_missing_tokens", {"inspect", "--model", "$MODEL", "--out", "$OUT"}},
      {"inspect_missing_out", {"inspect", "--model", "$MODEL", "--tokens", "1,2"}},
      {"inspect_out_without_value", {"inspect", "--model", "$MODEL", "--tokens", "1,2", "--out"}},
      {"inspect_extra_positional",
       {"inspect", "--model", "$MODEL", "--tokens", "1,2", "--out", "$OUT", "extra"}},
      {"inspect_out_in_missing_dir",
       {"inspect", "--model", "$MODEL", "--tokens", "1,2", "--out", "$OUT/no/such/x.safetensors"}},
      {"init_unknown_flag", {"init", "--config", "$CONFIG", "--out", "$OUT", "--bogus"}},
      {"init_missing_config", {"init", "--out", "$OUT"}},
      {"init_missing_out", {"init", "--config", "$CONFIG"}},
      {"init_config_not_found", {"init", "--config", "$CONFIG.nope", "--out", "$OUT"}},
      {"init_seed_abc", {"init", "--config", "$CONFIG", "--out", "$OUT", "--seed", "abc"}},
      {"init_seed_fraction", {"init", "--config", "$CONFIG", "--out", "$OUT", "--seed", "1.5"}},
      {"init_seed_without_value", {"init", "--config", "$CONFIG", "--out", "$OUT", "--seed"}},
  };
}

std::string substitute(std::string s, const std::map<std::string, std::string>& vars) {
  for (const auto& [key, value] : vars)
    for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size()))
      s.replace(at, key.size(), value);
  return s;
}

class BadFlags : public Cli, public ::testing::WithParamInterface<FlagCase> {};

TEST_P(BadFlags, FailClearly) {
  const fs::path model = make_model("init");
  ASSERT_FALSE(HasFailure());
  const fs::path cfg = work_ / "good_config.json";
  write_text(cfg, tiny_config().dump());
  const fs::path out = work_ / "out";
  std::vector<std::string> args;
  for (const auto& a : GetParam().args)
    args.push_back(substitute(
        a, {{"$MODEL", model.string()}, {"$CONFIG", cfg.string()}, {"$OUT", out.string()}}));
  expect_clean_failure(args);
  EXPECT_FALSE(fs::exists(out));
}

// ------------------------------------------------------------------------------ init --out

TEST_F(Cli, InitIntoNonEmptyDirectoryFails) {
  const fs::path cfg = work_ / "config.json", out = work_ / "existing";
  write_text(cfg, tiny_config().dump());
  fs::create_directory(out);
  write_text(out / "keep.txt", "precious");
  expect_clean_failure({"init", "--config", cfg.string(), "--out", out.string()});
  EXPECT_EQ(read_text(out / "keep.txt"), "precious");
}

TEST_F(Cli, InitOntoExistingFileFails) {
  const fs::path cfg = work_ / "config.json", out = work_ / "a_file";
  write_text(cfg, tiny_config().dump());
  write_text(out, "precious");
  expect_clean_failure({"init", "--config", cfg.string(), "--out", out.string()});
}

TEST_F(Cli, InitBadConfigIntoEmptyDirectoryLeavesItEmpty) {
  const fs::path cfg = work_ / "config.json", out = work_ / "empty";
  write_text(cfg, "{}");
  fs::create_directory(out);
  expect_clean_failure({"init", "--config", cfg.string(), "--out", out.string()});
  EXPECT_TRUE(fs::is_empty(out));
}

// Parameters that fit the machine's memory but not the process's address space: the
// allocation fails, and that must be a clean error, not a crash.
TEST_F(Cli, InitAllocationFailureIsCleanError) {
  json c = tiny_config();
  c.update({{"hidden_size", 4096},
            {"intermediate_size", 16384},
            {"num_hidden_layers", 4},
            {"num_attention_heads", 32}});  // about 1.1e9 parameters, 4.3 GB
  const fs::path cfg = work_ / "config.json", out = work_ / "big";
  write_text(cfg, c.dump());
  expect_clean_failure({"init", "--config", cfg.string(), "--out", out.string()}, "",
                       uint64_t{2} << 30);
  EXPECT_FALSE(fs::exists(out));
}

// ------------------------------------------------------------------------------ positive checks

TEST_F(Cli, HelpExitsZero) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--help"}, {"init", "--help"}, {"inspect", "--help"}}) {
    const RunResult r = run(args);
    EXPECT_TRUE(r.exited && r.status == 0) << report(r);
    EXPECT_FALSE(r.out.empty()) << report(r);
  }
}

TEST_F(Cli, InitIntoEmptyDirectorySucceeds) {
  const fs::path cfg = work_ / "config.json", out = work_ / "empty";
  write_text(cfg, tiny_config().dump());
  fs::create_directory(out);
  const RunResult r = run({"init", "--config", cfg.string(), "--out", out.string()});
  EXPECT_TRUE(r.exited && r.status == 0) << report(r);
  EXPECT_TRUE(fs::exists(out / "config.json"));
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
}

TEST_F(Cli, InitIsDeterministicInTheSeed) {
  const fs::path cfg = work_ / "config.json";
  write_text(cfg, tiny_config().dump());
  auto init = [&](const std::string& dir, const std::string& seed) {
    const RunResult r =
        run({"init", "--config", cfg.string(), "--out", (work_ / dir).string(), "--seed", seed});
    EXPECT_TRUE(r.exited && r.status == 0) << report(r);
    return read_bytes(work_ / dir / "model.safetensors");
  };
  const auto a = init("a", "5"), b = init("b", "5"), c = init("c", "6");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// init, then inspect --grads: logits [T, vocab], loss [1], grad.<name> of the same shape for
// every tensor in model.safetensors, all F32, offsets covering the data exactly.
TEST_F(Cli, InitThenInspectWithGrads) {
  const fs::path model = make_model("init");
  ASSERT_FALSE(HasFailure());
  const fs::path out = work_ / "out.safetensors";
  const RunResult r = run({"inspect", "--model", model.string(), "--tokens", "3,1,4,1,5", "--out",
                           out.string(), "--grads"});
  ASSERT_TRUE(r.exited && r.status == 0) << report(r);
  EXPECT_EQ(r.err, "");
  const Safetensors m = Safetensors::load(model / "model.safetensors");
  const Safetensors o = Safetensors::load(out);
  std::set<std::string> expected{"logits", "loss"}, got;
  for (const auto& [name, v] : m.header.items())
    if (name != "__metadata__") expected.insert("grad." + name);
  uint64_t bytes = 0;
  for (const auto& [name, v] : o.header.items()) {
    if (name == "__metadata__") continue;
    got.insert(name);
    EXPECT_EQ(v.at("dtype"), "F32") << name;
    const auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
    uint64_t n = 4;
    for (int64_t s : v.at("shape").get<std::vector<int64_t>>()) n *= static_cast<uint64_t>(s);
    EXPECT_EQ(off[1] - off[0], n) << name;
    bytes += n;
    if (name.rfind("grad.", 0) == 0) {
      EXPECT_EQ(v.at("shape"), m.header.at(name.substr(5)).at("shape")) << name;
    }
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(bytes, o.data.size());
  EXPECT_EQ(shape_of(o.header, "logits"), (std::vector<int64_t>{5, kTinyVocab}));
  EXPECT_EQ(shape_of(o.header, "loss"), (std::vector<int64_t>{1}));
  float loss = 0;
  std::memcpy(&loss, o.data.data() + o.header["loss"]["data_offsets"][0].get<size_t>(), 4);
  EXPECT_TRUE(std::isfinite(loss) && loss > 0) << loss;
}

TEST_F(Cli, InspectWithoutGradsWritesLogitsAndLossOnly) {
  const fs::path model = make_model("init");
  ASSERT_FALSE(HasFailure());
  const fs::path out = work_ / "out.safetensors";
  const RunResult r =
      run({"inspect", "--model", model.string(), "--tokens", " 0, 31 ,2", "--out", out.string()});
  ASSERT_TRUE(r.exited && r.status == 0) << report(r);
  const Safetensors o = Safetensors::load(out);
  std::set<std::string> got;
  for (const auto& [name, v] : o.header.items())
    if (name != "__metadata__") got.insert(name);
  EXPECT_EQ(got, (std::set<std::string>{"logits", "loss"}));
  EXPECT_EQ(shape_of(o.header, "logits"), (std::vector<int64_t>{3, kTinyVocab}));
}

TEST_F(Cli, InspectAcceptsExactlyMaxPositions) {
  const fs::path model = make_model("init");
  ASSERT_FALSE(HasFailure());
  const RunResult r = run({"inspect", "--model", model.string(), "--tokens",
                           join_ids(kTinyMaxPositions, kTinyVocab - 1), "--out",
                           (work_ / "out.safetensors").string()});
  EXPECT_TRUE(r.exited && r.status == 0) << report(r);
}

TEST_F(Cli, ExtraTensorIsAWarning) {
  const fs::path model = make_model("init");
  ASSERT_FALSE(HasFailure());
  edit_safetensors(model / "model.safetensors", [](Safetensors& s) {
    s.add_f32("model.extra.weight", {2, 3}, 1.0f);
  });
  const fs::path out = work_ / "out.safetensors";
  const RunResult r = run({"inspect", "--model", model.string(), "--tokens", "1,2,3", "--out",
                           out.string(), "--grads"});
  EXPECT_TRUE(r.exited && r.status == 0) << report(r);
  const auto lines = lines_of(r.err);
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.rfind(kWarningPrefix, 0) == 0 && l.find("model.extra.weight") != std::string::npos;
  })) << report(r);
  EXPECT_TRUE(fs::exists(out));
  EXPECT_FALSE(Safetensors::load(out).header.contains("grad.model.extra.weight"));
}

TEST_F(Cli, InspectEveryGoldenCase) {
  int cases = 0;
  for (const auto& e : fs::directory_iterator(kGoldenDir)) {
    if (!fs::exists(e.path() / "config.json")) continue;
    ++cases;
    const std::string name = e.path().filename().string();
    std::string tokens = read_text(e.path() / "tokens.txt");
    tokens.erase(tokens.find_last_not_of(" \r\n\t") + 1);
    const fs::path out = work_ / (name + ".safetensors");
    const RunResult r = run({"inspect", "--model", e.path().string(), "--tokens", tokens, "--out",
                             out.string(), "--grads"});
    EXPECT_TRUE(r.exited && r.status == 0) << name << "\n" << report(r);
    EXPECT_EQ(r.err, "") << name;
    if (!fs::exists(out)) continue;
    const json config = json::parse(read_text(e.path() / "config.json"));
    const auto T = static_cast<int64_t>(std::count(tokens.begin(), tokens.end(), ',') + 1);
    EXPECT_EQ(shape_of(Safetensors::load(out).header, "logits"),
              (std::vector<int64_t>{T, config.at("vocab_size").get<int64_t>()}))
        << name;
  }
  EXPECT_GE(cases, 7);
}

// ------------------------------------------------------------------------------ instantiation

// gtest prints a failing test's parameter; print the case name instead of raw bytes.
void PrintTo(const ConfigCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const DirCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const TokenCase& c, std::ostream* os) { *os << c.name << " [" << c.tokens << "]"; }
void PrintTo(const FlagCase& c, std::ostream* os) { *os << c.name; }

template <typename T>
std::string case_name(const ::testing::TestParamInfo<T>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Cli, InitBadConfig, ::testing::ValuesIn(config_cases()),
                         case_name<ConfigCase>);
INSTANTIATE_TEST_SUITE_P(Cli, InspectBadModel,
                         ::testing::Combine(::testing::ValuesIn(dir_cases()),
                                            ::testing::Values(std::string("init"),
                                                              std::string("diff_bf16_weights"))),
                         [](const ::testing::TestParamInfo<std::tuple<DirCase, std::string>>& p) {
                           const std::string& base = std::get<1>(p.param);
                           return std::get<0>(p.param).name + (base == "init" ? "_f32" : "_bf16");
                         });
INSTANTIATE_TEST_SUITE_P(Cli, InspectBadTokens, ::testing::ValuesIn(token_cases()),
                         case_name<TokenCase>);
INSTANTIATE_TEST_SUITE_P(Cli, BadFlags, ::testing::ValuesIn(flag_cases()), case_name<FlagCase>);

}  // namespace
