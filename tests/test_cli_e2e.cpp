// End-to-end tests of the subcommands that had none: generate, plot, bench and tokenizer, run
// as the real program on a tiny model (tests/tiny_model.h). Bad input must keep the error
// contract of SPEC section 3 (one line, exit 2, no signal, no half-written output).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/drawing.h"
#include "cli_util.h"
#include "test_util.h"
#include "tiny_model.h"

namespace difftx {
namespace {

namespace fs = std::filesystem;
using cli_test::expect_error_line;
using cli_test::lines_of;
using cli_test::read_bytes;
using cli_test::read_text;
using cli_test::report;
using cli_test::RunResult;
using cli_test::write_text;
using json = nlohmann::json;

class E2e : public ::testing::Test {
 protected:
  RunResult run(const std::vector<std::string>& args) {
    return cli_test::run_difftx(args, tmp_.path(), 0, 300);
  }
  // Runs args and expects success with nothing on stderr; returns stdout.
  std::string ok(const std::vector<std::string>& args) {
    const RunResult r = run(args);
    EXPECT_TRUE(r.exited && r.status == 0) << report(r);
    EXPECT_EQ(r.err, "") << report(r);
    return r.out;
  }
  fs::path model() {
    if (model_.empty()) model_ = test::make_tiny_model(tmp_.path() / "model");
    return model_;
  }
  fs::path path(const std::string& name) const { return tmp_.path() / name; }

  test::TempDir tmp_;
  fs::path model_;
};

std::vector<int> parse_ids(const std::string& text) {
  std::vector<int> ids;
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    ids.push_back(std::stoi(s.substr(pos, end - pos)));
    pos = end + 1;
  }
  return ids;
}

// Text as a JSON line shows it: invalid UTF-8 replaced by U+FFFD.
std::string as_json_text(const std::string& s) {
  return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

std::string join_ids(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// ---------------------------------------------------------------------------------- generate

TEST_F(E2e, GenerateGreedyTextIsDeterministicAndEqualsTheDecodedIds) {
  const std::vector<std::string> base = {"generate", "--model", model().string(), "--temperature",
                                         "0", "--max-tokens", "12"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string text = ok(with({"--prompt", "Hello"}));
  EXPECT_EQ(ok(with({"--prompt", "Hello"})), text) << "greedy decoding must repeat exactly";
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');

  // The same prompt as byte ids, printed as ids: at most --max-tokens of them, each in the
  // vocabulary; decoded by the model's tokenizer they give the text above.
  const std::string ids_out = ok(with({"--tokens", "72,101,108,108,111", "--ids"}));
  const std::vector<int> ids = parse_ids(ids_out);
  ASSERT_GE(ids.size(), 1u);
  EXPECT_LE(ids.size(), 12u);
  for (int id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 257);
  }
  std::vector<int> printable;  // the end-of-text id (256) ends the text without printing
  for (int id : ids)
    if (id < 256) printable.push_back(id);
  if (!printable.empty()) {
    const std::string decoded =
        ok({"tokenizer", "decode", "--model", model().string(), "--ids", join_ids(printable)});
    EXPECT_EQ(decoded, text.substr(0, text.size() - 1));
  }
}

TEST_F(E2e, GeneratePromptFileGivesOneJsonLinePerPromptLikeSinglePrompts) {
  const std::vector<std::string> prompts = {"The", "Fellow citizens", "a"};
  write_text(path("prompts.txt"), prompts[0] + "\n\n" + prompts[1] + "\r\n" + prompts[2]);
  const std::string out = ok({"generate", "--model", model().string(), "--prompt-file",
                              path("prompts.txt").string(), "--temperature", "0",
                              "--max-tokens", "6"});
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), prompts.size()) << out;  // the blank line is no prompt
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    const json j = json::parse(lines[i]);
    EXPECT_EQ(j["index"], i);
    EXPECT_EQ(j["prompt"], prompts[i]);
    EXPECT_LE(j["tokens"].get<int>(), 6);
    EXPECT_TRUE(j["finish_reason"] == "length" || j["finish_reason"] == "eos");
    // A batch decodes each prompt as it would alone.
    std::string single = ok({"generate", "--model", model().string(), "--prompt", prompts[i],
                             "--temperature", "0", "--max-tokens", "6"});
    single.pop_back();  // the final newline
    EXPECT_EQ(j["text"].get<std::string>(), as_json_text(single));
  }
}

TEST_F(E2e, GenerateStopsBeforeAStopString) {
  // A stop string taken from the middle of the free-running text: the output ends just
  // before its first occurrence. The fixture's random model prints mostly non-ASCII bytes:
  // take the first prompt whose continuation holds two printable ASCII bytes in a row.
  std::vector<std::string> base;
  std::string full, stop, prompt;
  size_t at = std::string::npos;
  for (const char* p : {"Once", "The", "A", "In", "x", "9", "Hello", "To be"}) {
    base = {"generate", "--model", model().string(), "--prompt", p, "--temperature", "0",
            "--max-tokens", "24"};
    full = ok(base);
    full.pop_back();
    for (size_t i = 2; i + 2 <= full.size() && at == std::string::npos; ++i) {
      const unsigned char a = full[i], b = full[i + 1];
      if (a < 0x80 && b < 0x80 && a >= 0x20 && b >= 0x20) stop = full.substr(i, 2), at = full.find(stop);
    }
    if (at != std::string::npos) {
      prompt = p;
      break;
    }
  }
  ASSERT_NE(at, std::string::npos) << "the tiny model printed no two ASCII bytes for any prompt";
  std::vector<std::string> args = base;
  args.insert(args.end(), {"--stop", stop});
  std::string cut = ok(args);
  cut.pop_back();
  EXPECT_EQ(cut, full.substr(0, at)) << "stop string [" << stop << "]";

  // In a batch the stop is the finish reason.
  write_text(path("p.txt"), prompt + "\n");
  const json j = json::parse(ok({"generate", "--model", model().string(), "--prompt-file",
                                 path("p.txt").string(), "--temperature", "0", "--max-tokens",
                                 "24", "--stop", stop}));
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["text"], as_json_text(full.substr(0, at)));
}

TEST_F(E2e, GenerateBadInputIsOneErrorLine) {
  expect_error_line(run({"generate", "--model", model().string(), "--tokens", "1,999"}), "999");
  expect_error_line(run({"generate", "--model", model().string(), "--prompt-file",
                         path("missing.txt").string()}),
                    "missing.txt");
  write_text(path("blank.txt"), "\n\n");
  expect_error_line(run({"generate", "--model", model().string(), "--prompt-file",
                         path("blank.txt").string()}));
  test::TinyModel no_tok;
  no_tok.byte_tokenizer = false;
  const fs::path bare = test::make_tiny_model(path("bare"), no_tok);
  expect_error_line(run({"generate", "--model", bare.string(), "--prompt", "Hi"}), "tokenizer");
  // Without a tokenizer, ids still work.
  EXPECT_FALSE(ok({"generate", "--model", bare.string(), "--tokens", "1,2,3", "--max-tokens", "3",
                   "--temperature", "0"})
                   .empty());
}

// -------------------------------------------------------------------------------------- plot

void write_metrics(const fs::path& dir, const std::string& text) {
  fs::create_directories(dir);
  write_text(dir / "metrics.jsonl", text);
}

std::string curve(int steps) {
  std::string text;
  for (int s = 1; s <= steps; ++s) {
    text += "{\"step\": " + std::to_string(s) + ", \"loss\": " +
            std::to_string(5.0 * std::exp(-s / 20.0) + 2.0 + 0.1 * std::sin(s)) + "}\n";
    if (s % 10 == 0)
      text += "{\"step\": " + std::to_string(s) + ", \"val_loss\": " +
              std::to_string(5.0 * std::exp(-s / 20.0) + 2.1) + "}\n";
  }
  return text;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t(b.at(at)) << 24) | (uint32_t(b.at(at + 1)) << 16) |
         (uint32_t(b.at(at + 2)) << 8) | b.at(at + 3);
}

// A PNG file: the signature, an IHDR of the expected size, and pixels that decode.
void expect_png(const fs::path& p, uint32_t width, uint32_t height) {
  SCOPED_TRACE(p.string());
  ASSERT_TRUE(fs::is_regular_file(p));
  const auto b = read_bytes(p);
  ASSERT_GT(b.size(), 33u);
  const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_TRUE(std::equal(sig, sig + 8, b.begin()));
  EXPECT_EQ(std::string(b.begin() + 12, b.begin() + 16), "IHDR");
  EXPECT_EQ(be32(b, 16), width);
  EXPECT_EQ(be32(b, 20), height);
  const Image img = decode_png(b);
  EXPECT_EQ(img.width, static_cast<int>(width));
  EXPECT_EQ(img.height, static_cast<int>(height));
}

// Parses with xmllint (Debian libxml2-utils, from scripts/install-deps.sh).
void expect_svg(const fs::path& p) {
  SCOPED_TRACE(p.string());
  const std::string text = read_text(p);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  const std::string cmd = "xmllint --noout '" + p.string() + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << p << " is not well-formed XML (" << cmd << ")";
}

TEST_F(E2e, PlotWritesPngAndSvg) {
  write_metrics(path("runs/diff"), curve(120));
  write_metrics(path("runs/llama"), curve(100));
  const std::string a = path("runs/diff").string(), b = path("runs/llama").string();
  const std::string out = ok({"plot", a, b, "--out", path("loss.png").string()});
  EXPECT_NE(out.find("2 runs"), std::string::npos) << out;
  expect_png(path("loss.png"), 1000, 600);
  ok({"plot", a, b, "--out", path("loss.svg").string(), "--title", "caf\xc3\xa9 \xff runs"});
  expect_svg(path("loss.svg"));
  EXPECT_NE(read_text(path("loss.svg")).find("width=\"1000px\" height=\"600px\""),
            std::string::npos);  // the PNG's size, in pixels
  ok({"plot", a, "--out", path("LOSS.SVG").string(), "--log-x", "--metric", "val_loss"});
  expect_svg(path("LOSS.SVG"));
  ok({"plot", a, "--out", path("smooth.png").string(), "--smooth", "0"});
  expect_png(path("smooth.png"), 1000, 600);
  // Nothing but the outputs was written: no temporary files are left behind.
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp_.path())) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"runs", "loss.png", "loss.svg", "LOSS.SVG",
                                          "smooth.png"}));
}

// Losses at the ends of the double range, flat curves and single points all plot (the tick
// list used to come out empty at 1e308 / -1e308 and plot segfaulted).
TEST_F(E2e, PlotDrawsExtremeAndDegenerateLosses) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"huge_both_signs", "{\"step\": 1, \"loss\": 1e308}\n{\"step\": 2, \"loss\": -1e308}\n"},
      {"largest_doubles",
       "{\"step\": 1, \"loss\": 1.7976931348623157e308}\n"
       "{\"step\": 2, \"loss\": -1.7976931348623157e308}\n"
       "{\"step\": 2, \"val_loss\": 1.7976931348623157e308}\n"},
      {"all_equal", "{\"step\": 1, \"loss\": 3.5}\n{\"step\": 2, \"loss\": 3.5}\n"
                    "{\"step\": 3, \"loss\": 3.5}\n"},
      {"all_equal_huge", "{\"step\": 1, \"loss\": 1.7e308}\n{\"step\": 5, \"loss\": 1.7e308}\n"},
      {"single_point", "{\"step\": 7, \"loss\": 2.25}\n"},
      {"single_val_point", "{\"step\": 0, \"val_loss\": -4}\n"},
      {"tiny_values", "{\"step\": 1, \"loss\": 1e-300}\n{\"step\": 2, \"loss\": 3e-300}\n"},
      {"nearly_equal", "{\"step\": 1, \"loss\": 1.0}\n{\"step\": 2, \"loss\": 1.0000000000000002}\n"},
      // steps are integers up to 2^62 (train/metrics.h); the x axis spans all of them
      {"huge_steps", "{\"step\": 1, \"loss\": 1}\n{\"step\": 4611686018427387904, \"loss\": 2}\n"},
      {"some_nulls", "{\"step\": 1, \"loss\": null}\n{\"step\": 2, \"loss\": 4}\n"},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    write_metrics(path(name), text);
    for (const char* ext : {".png", ".svg"}) {
      const fs::path out = path(name + ext);
      for (const bool log_x : {false, true}) {
        std::vector<std::string> args = {"plot", path(name).string(), "--out", out.string()};
        if (log_x) args.push_back("--log-x");
        const RunResult r = run(args);
        SCOPED_TRACE(report(r));
        ASSERT_EQ(r.signal, 0);
        if (log_x && name == "single_val_point") {  // step 0 has no place on a log axis
          expect_error_line(r, "no data points");
          continue;
        }
        ASSERT_EQ(r.status, 0);
        if (std::string(ext) == ".png") expect_png(out, 1000, 600);
        else expect_svg(out);
      }
    }
  }
}

TEST_F(E2e, PlotWithoutDataIsOneErrorLineAndNoFile) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"blank_lines", "\n  \n"},
      {"all_null", "{\"step\": 1, \"loss\": null}\n{\"step\": 2, \"val_loss\": null}\n"},
      {"no_losses", "{\"step\": 1, \"lr\": 0.1}\n"},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    write_metrics(path(name), text);
    const fs::path out = path(name + ".png");
    expect_error_line(run({"plot", path(name).string(), "--out", out.string()}), "no data points");
    EXPECT_FALSE(fs::exists(out));
  }
  // NaN and Infinity are not JSON: the line is named.
  write_metrics(path("nan"), "{\"step\": 1, \"loss\": NaN}\n");
  expect_error_line(run({"plot", path("nan").string(), "--out", path("nan.png").string()}),
                    "line 1");
  EXPECT_FALSE(fs::exists(path("nan.png")));
  expect_error_line(run({"plot", path("nowhere").string(), "--out", path("x.png").string()}),
                    "nowhere");
}

// ------------------------------------------------------------------------------------- bench

TEST_F(E2e, BenchPrintsTheSpecKeys) {
  write_text(path("tiny.json"), test::tiny_config_json());
  const std::string out = ok({"bench", "--config", path("tiny.json").string(), "--seq", "16",
                              "--batch", "2", "--steps", "1", "--decode-tokens", "4", "--threads",
                              "1", "--json"});
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  const json j = json::parse(lines[0]);
  ASSERT_TRUE(j.is_object());
  for (const char* key : {"train_tokens_per_s", "prefill_tokens_per_s", "decode_tokens_per_s",
                          "peak_rss_mb", "mfu"}) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(j.contains(key)) << j.dump();
    ASSERT_TRUE(j[key].is_number()) << j.dump();
    const double v = j[key].get<double>();
    EXPECT_TRUE(std::isfinite(v));
    if (std::string(key) == "mfu") {
      EXPECT_GE(v, 0);
      EXPECT_LE(v, 1);
    } else {
      EXPECT_GT(v, 0);
    }
  }
  expect_error_line(run({"bench", "--config", path("missing.json").string(), "--json"}),
                    "missing.json");
}

// --------------------------------------------------------------------------------- tokenizer

TEST_F(E2e, TokenizerEncodeDecodeRoundTripAndInfo) {
  const std::string text = "Hello, w\xc3\xb6rld!\n\ttabs and \xe2\x82\xac";
  std::string ids = ok({"tokenizer", "encode", "--tokenizer", "byte", "--text", text});
  ASSERT_FALSE(ids.empty());
  ids.pop_back();  // newline
  std::vector<int> expected;
  for (unsigned char c : text) expected.push_back(c);
  EXPECT_EQ(parse_ids(ids), expected);  // the byte tokenizer: one id per byte
  EXPECT_EQ(ok({"tokenizer", "decode", "--tokenizer", "byte", "--ids", ids}), text);

  // From a file and through a model's saved tokenizer, the same ids.
  write_text(path("text.txt"), text);
  std::string from_file =
      ok({"tokenizer", "encode", "--model", model().string(), "--file", path("text.txt").string()});
  from_file.pop_back();
  EXPECT_EQ(from_file, ids);
  EXPECT_EQ(ok({"tokenizer", "decode", "--model", model().string(), "--ids", from_file}), text);

  const json info = json::parse(ok({"tokenizer", "info", "--model", model().string()}));
  EXPECT_EQ(info["type"], "byte");
  EXPECT_EQ(info["vocab_size"], 257);
  EXPECT_EQ(info["eos_id"], 256);
  EXPECT_TRUE(info["fingerprint"].is_string());
  EXPECT_EQ(json::parse(ok({"tokenizer", "info", "--tokenizer", "byte"})), info);

  expect_error_line(run({"tokenizer", "decode", "--tokenizer", "byte", "--ids", "1,x"}));
  expect_error_line(run({"tokenizer", "decode", "--tokenizer", "byte", "--ids", "300"}), "300");
  expect_error_line(run({"tokenizer", "info", "--tokenizer", "nonsense"}), "nonsense");
}

}  // namespace
}  // namespace difftx
