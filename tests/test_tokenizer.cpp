// Tokenizers: byte-level, GPT-2 BPE (against ids from the npm package's JavaScript reference),
// SentencePiece (trained here on tests/data/tokenizer/corpus), round trips of real text,
// non-ASCII and invalid UTF-8, streaming decode, model-directory save/load and bad input.
//
// The GPT-2 tests need cache/gpt2 from scripts/fetch-data.sh; they fail (not skip) without it.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "io/tokenizer.h"
#include "io/utf8_stream.h"
#include "test_util.h"

namespace difftx {
namespace {
using test::TempDir;
namespace fs = std::filesystem;

// ---- helpers ------------------------------------------------------------------------------------


std::string cache_dir() {
  const char* env = std::getenv("DIFFTX_CACHE");
  return env && *env ? std::string(env) : std::string(DIFFTX_SOURCE_DIR) + "/cache";
}
std::string fixture(const std::string& name) {
  return std::string(DIFFTX_SOURCE_DIR) + "/tests/data/tokenizer/" + name;
}

// The GPT-2 tokenizer from cache/gpt2, loaded once; nullptr (and a failure) when it is missing.
const Tokenizer* gpt2() {
  static std::unique_ptr<Tokenizer> tok = [] {
    const std::string dir = cache_dir() + "/gpt2";
    std::unique_ptr<Tokenizer> t;
    try {
      t = make_tokenizer("gpt2:" + dir);
    } catch (const Error& e) {
      std::fprintf(stderr, "cannot load the GPT-2 tokenizer: %s\n", e.what());
    }
    return t;
  }();
  if (!tok)
    ADD_FAILURE() << "GPT-2 tokenizer files missing in " << cache_dir()
                  << "/gpt2: run `bash scripts/fetch-data.sh` first (scripts/test.sh does)";
  return tok.get();
}

std::string random_bytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng.next_u64() & 0xFF);
  return s;
}

// Strings that are not valid UTF-8, mixed with text.
const std::vector<std::string>& invalid_utf8_samples() {
  static const std::vector<std::string> v = {
      "\xff",
      "abc\xff",
      "\xc3",                      // truncated 2-byte sequence at the end
      "caf\xc3 au lait",           // truncated in the middle
      "\xe2\x82",                  // truncated 3-byte sequence
      "x\xed\xa0\x80y",            // UTF-8-encoded surrogate
      "\xc0\xaf overlong",         // overlong '/'
      "\xf4\x90\x80\x80 > U+10FFFF",
      "\x80\x80\x80 stray continuation bytes",
      " \xfe\xff BOM-ish \xff\xfe ",
      "h\xc3\xa9llo \xe9t\xe9 latin-1",  // Latin-1 é among UTF-8
      "\xf0\x9f\xa6 cut emoji \xf0\x9f\xa6\x80 full emoji",
      std::string("nul\0byte\0", 9),
  };
  return v;
}

std::string read_prefix(const std::string& path, size_t n) {
  std::string t = read_file_text(path);
  if (t.size() > n) t.resize(n);
  while (!t.empty() && (static_cast<uint8_t>(t.back()) & 0xC0) == 0x80) t.pop_back();
  if (!t.empty() && static_cast<uint8_t>(t.back()) >= 0xC0) t.pop_back();
  return t;
}

// s with bytes outside printable ASCII as \xNN, for failure messages.
std::string escaped(const std::string& s) {
  std::string out;
  for (const char c : s.substr(0, 200)) {
    const auto b = static_cast<uint8_t>(c);
    if (b >= 0x20 && b < 0x7F) {
      out.push_back(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
      out += buf;
    }
  }
  return out + (s.size() > 200 ? "..." : "");
}

void expect_round_trip(const Tokenizer& tok, const std::string& text) {
  const auto ids = tok.encode(text);
  for (const int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size()) << id;
  EXPECT_EQ(tok.decode(ids), text) << tok.kind() << " round trip of \"" << escaped(text) << "\"";
}

// ---- UTF-8 helpers ------------------------------------------------------------------------------

TEST(Utf8, SequenceLengths) {
  char32_t cp = 0;
  EXPECT_EQ(utf8::sequence_length("a", 0, &cp), 1u);
  EXPECT_EQ(cp, U'a');
  EXPECT_EQ(utf8::sequence_length("\xc3\xa9", 0, &cp), 2u);
  EXPECT_EQ(cp, 0xE9u);
  EXPECT_EQ(utf8::sequence_length("\xe2\x82\xac", 0, &cp), 3u);
  EXPECT_EQ(cp, 0x20ACu);
  EXPECT_EQ(utf8::sequence_length("\xf0\x9f\xa6\x80", 0, &cp), 4u);
  EXPECT_EQ(cp, 0x1F980u);
  for (const char* bad : {"\x80", "\xc0\xaf", "\xc3", "\xe0\x80\x80", "\xed\xa0\x80",
                          "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xff", "\xe2\x28\xa1"})
    EXPECT_EQ(utf8::sequence_length(bad, 0), 0u) << bad;
  EXPECT_TRUE(utf8::is_valid("héllo wörld 🦀 日本"));
  for (const auto& s : invalid_utf8_samples())
    if (s.find('\0') == std::string::npos) EXPECT_FALSE(utf8::is_valid(s)) << s;
}

TEST(Utf8, Classes) {
  using utf8::CharClass;
  EXPECT_EQ(utf8::classify(U'a'), CharClass::kLetter);
  EXPECT_EQ(utf8::classify(U'é'), CharClass::kLetter);
  EXPECT_EQ(utf8::classify(U'Ж'), CharClass::kLetter);
  EXPECT_EQ(utf8::classify(U'日'), CharClass::kLetter);
  EXPECT_EQ(utf8::classify(U'7'), CharClass::kNumber);
  EXPECT_EQ(utf8::classify(U'٣'), CharClass::kNumber);  // Arabic-Indic digit
  EXPECT_EQ(utf8::classify(U'½'), CharClass::kNumber);
  EXPECT_EQ(utf8::classify(U'Ⅻ'), CharClass::kNumber);  // letter-number Nl
  EXPECT_EQ(utf8::classify(U' '), CharClass::kSpace);
  EXPECT_EQ(utf8::classify(U'\n'), CharClass::kSpace);
  EXPECT_EQ(utf8::classify(0xA0), CharClass::kSpace);
  EXPECT_EQ(utf8::classify(0x3000), CharClass::kSpace);
  EXPECT_EQ(utf8::classify(0x85), CharClass::kSpace);
  EXPECT_EQ(utf8::classify(0xFEFF), CharClass::kOther);
  EXPECT_EQ(utf8::classify(0x0301), CharClass::kOther);  // combining accent (Mn)
  EXPECT_EQ(utf8::classify(U'!'), CharClass::kOther);
  EXPECT_EQ(utf8::classify(0x1F980), CharClass::kOther);  // emoji
}

TEST(Utf8, StreamHoldsBackOnlyIncompleteCharacters) {
  utf8::Utf8Stream s;
  EXPECT_EQ(s.push("h\xc3"), "h");
  EXPECT_EQ(s.push("\xa9"), "\xc3\xa9");
  EXPECT_EQ(s.push("\xf0\x9f"), "");
  EXPECT_EQ(s.push("\xa6"), "");
  EXPECT_EQ(s.push("\x80!"), "\xf0\x9f\xa6\x80!");
  EXPECT_EQ(s.push("\xff"), "\xff");           // never valid: passed through at once
  EXPECT_EQ(s.push("\xe0\x80"), "\xe0\x80");   // cannot become valid (overlong)
  EXPECT_EQ(s.push("\xe2\x82"), "");
  EXPECT_EQ(s.finish(), "\xe2\x82");           // incomplete at the end: flushed as is
  EXPECT_EQ(s.finish(), "");
}

// ---- byte ---------------------------------------------------------------------------------------

TEST(ByteTokenizer, RoundTripsRandomBytes) {
  const auto tok = make_tokenizer("byte");
  EXPECT_EQ(tok->kind(), "byte");
  EXPECT_EQ(tok->vocab_size(), 257);
  EXPECT_EQ(tok->eos_id(), 256);
  Rng rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string s = random_bytes(rng, rng.next_u64() % 600);
    const auto ids = tok->encode(s);
    ASSERT_EQ(ids.size(), s.size());
    for (size_t i = 0; i < s.size(); ++i) ASSERT_EQ(ids[i], static_cast<uint8_t>(s[i]));
    ASSERT_EQ(tok->decode(ids), s);
  }
  for (const auto& s : invalid_utf8_samples()) expect_round_trip(*tok, s);
  EXPECT_EQ(tok->decode(std::vector<int32_t>{104, 105, 256}), "hi<|endoftext|>");
  EXPECT_THROW(tok->decode(std::vector<int32_t>{257}), Error);
  EXPECT_THROW(tok->decode(std::vector<int32_t>{-1}), Error);
}

// ---- GPT-2 --------------------------------------------------------------------------------------

// Ground truth from the npm package's own JavaScript (gpt-3-encoder@1.1.4, Encoder.js), e.g.
//   node -e 'console.log(require("gpt-3-encoder").encode("Hello world"))'
TEST(Gpt2Tokenizer, MatchesReferenceEncodings) {
  const Tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "gpt2");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), 50256);
  const std::vector<std::pair<std::string, std::vector<int32_t>>> cases = {
      {"Hello world", {15496, 995}},
      {" Hello world", {18435, 995}},
      {"hello", {31373}},
      {"I'm", {40, 1101}},
      {"1234567", {10163, 2231, 3134}},
      {"héllo wörld", {71, 2634, 18798, 266, 30570, 335}},
      {"I \u2764\ufe0f 🦀!", {40, 43074, 97, 37929, 12520, 99, 222, 0}},
      {"日本語のテキスト", {33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302}},
      {"They're sure we'll win, isn't it?",
       {2990, 821, 1654, 356, 1183, 1592, 11, 2125, 470, 340, 30}},
      {"a  b\n\n c   ", {64, 220, 275, 628, 269, 220, 220, 220}},
      {"  leading and trailing  ", {220, 3756, 290, 25462, 220, 220}},
      {"GPT-2's tokenizer: 100% (byte-level) <|endoftext|>",
       {38, 11571, 12, 17, 338, 11241, 7509, 25, 1802, 4, 357, 26327, 12, 5715, 8, 1279, 91, 437,
        1659, 5239, 91, 29}},
      {"Ünïcödé — “quotes” … ½ Ⅻ ٣٤٥",
       {127, 250, 77, 26884, 66, 9101, 67, 2634, 851, 564, 250, 421, 6421, 447, 251, 3926, 25208,
        2343, 227, 104, 18923, 96, 149, 97, 149, 98}},
      {"\tTabs\tand\r\nCRLF\r\n", {197, 51, 8937, 197, 392, 201, 198, 34, 7836, 37, 201, 198}},
      {"", {}},
  };
  for (const auto& [text, want] : cases) {
    EXPECT_EQ(tok->encode(text), want) << text;
    EXPECT_EQ(tok->decode(want), text) << text;
  }
  EXPECT_EQ(tok->decode(std::vector<int32_t>{50256}), "<|endoftext|>");
  EXPECT_THROW(tok->decode(std::vector<int32_t>{50257}), Error);
}

TEST(Gpt2Tokenizer, RoundTripsRealText) {
  const Tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  const std::string sotu = cache_dir() + "/sotu/2021_joseph_r_biden_d.txt";
  ASSERT_TRUE(fs::exists(sotu)) << sotu << " missing: run `bash scripts/fetch-data.sh`";
  // A paragraph (the opening, with its curly quotes and dashes), then the whole address.
  const std::string paragraph = read_prefix(sotu, 3000);
  expect_round_trip(*tok, paragraph);
  const std::string whole = read_file_text(sotu);
  const auto ids = tok->encode(whole);
  EXPECT_EQ(tok->decode(ids), whole);
  EXPECT_LT(ids.size(), whole.size() / 3);  // BPE compresses English about 4x
  for (const auto& e : fs::directory_iterator(fixture("corpus")))
    expect_round_trip(*tok, read_file_text(e.path().string()));
}

TEST(Gpt2Tokenizer, RoundTripsInvalidUtf8AndRandomBytes) {
  const Tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  for (const auto& s : invalid_utf8_samples()) expect_round_trip(*tok, s);
  Rng rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string s = random_bytes(rng, rng.next_u64() % 200);
    ASSERT_EQ(tok->decode(tok->encode(s)), s) << "trial " << trial;
  }
  // Random mixes of ASCII, spaces, apostrophes and multi-byte characters.
  const std::vector<std::string> parts = {"a", "Z", " ", "  ", "\n", "'", "'s", "'ll", "1", "é",
                                          "日", "🦀", "—", "\xa0", ".", "\xff", "\xe2\x82"};
  for (int trial = 0; trial < 300; ++trial) {
    std::string s;
    for (int k = rng.next_u64() % 20; k > 0; --k) s += parts[rng.next_u64() % parts.size()];
    ASSERT_EQ(tok->decode(tok->encode(s)), s) << "trial " << trial;
  }
}

TEST(Gpt2Tokenizer, LongPiecesStayFast) {
  const Tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  const auto start = std::chrono::steady_clock::now();
  std::string mixed;
  Rng rng(3);
  for (int i = 0; i < 100000; ++i) mixed.push_back("abcdefghij"[rng.next_u64() % 10]);
  const std::string spaces(200000, ' '), letters(100000, 'a'), digits(100000, '7');
  const std::string& letter_mix = mixed;
  for (const std::string* s : {&spaces, &letters, &digits, &letter_mix}) {
    const auto ids = tok->encode(*s);
    EXPECT_EQ(tok->decode(ids), *s);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(secs, 10.0) << "BPE on long pieces must not be quadratic";
}

TEST(Gpt2Tokenizer, EncodesFromSeveralThreads) {
  const Tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  std::vector<std::string> texts;
  for (const auto& e : fs::directory_iterator(fixture("corpus")))
    texts.push_back(read_file_text(e.path().string()));
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok->encode(t));
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      bool all = true;
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) all = all && tok->encode(texts[i]) == want[i];
      ok[k] = all;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

// A tiny GPT-2-format vocabulary: the 256 byte tokens, the given merges, <|endoftext|>.
std::string gpt2_symbols(const std::string& bytes) {
  // GPT-2's bytes_to_unicode.
  std::string out;
  for (const char c : bytes) {
    const int b = static_cast<uint8_t>(c);
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    int cp = b;
    if (!printable) {
      int n = 0;
      for (int k = 0; k < b; ++k) {
        const bool p = (k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE);
        n += p ? 0 : 1;
      }
      cp = 256 + n;
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

void write_mini_gpt2(const std::string& dir,
                     const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json enc = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) enc[gpt2_symbols(std::string(1, static_cast<char>(b)))] = id++;
  std::string bpe = "#version: 0.2\n";
  for (const auto& [a, b] : merges) {
    const std::string m = gpt2_symbols(a + b);
    if (!enc.contains(m)) enc[m] = id++;
    bpe += gpt2_symbols(a) + " " + gpt2_symbols(b) + "\n";
  }
  enc["<|endoftext|>"] = id++;
  fs::create_directories(dir);
  write_file_atomic(dir + "/encoder.json", enc.dump());
  write_file_atomic(dir + "/vocab.bpe", bpe);
}

TEST(Gpt2Tokenizer, MergesLikeEncoderPy) {
  TempDir tmp;
  // ids: bytes 0..255 (id = byte value), "aa" 256, "aaa" 257, " a" 258, <|endoftext|> 259.
  write_mini_gpt2(tmp.path(), {{"a", "a"}, {"aa", "a"}, {" ", "a"}});
  const auto tok = make_tokenizer("gpt2:" + tmp.path().string());
  EXPECT_EQ(tok->vocab_size(), 260);
  EXPECT_EQ(tok->eos_id(), 259);
  // encoder.py merges the best pair everywhere, left to right without overlaps, before
  // looking for the next: "aaaaa" -> aa aa a -> aa aaa.
  EXPECT_EQ(tok->encode("aa"), (std::vector<int32_t>{256}));
  EXPECT_EQ(tok->encode("aaa"), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok->encode("aaaa"), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ(tok->encode("aaaaa"), (std::vector<int32_t>{256, 257}));
  EXPECT_EQ(tok->encode(" a"), (std::vector<int32_t>{258}));
  // " aa": the piece is " aa"; (a,a) has a better rank than (" ",a).
  EXPECT_EQ(tok->encode(" aa"), (std::vector<int32_t>{' ', 256}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{259}), "<|endoftext|>");
}

TEST(Gpt2Tokenizer, RejectsBrokenFiles) {
  TempDir tmp;
  write_mini_gpt2(tmp.path(), {{"a", "a"}});
  EXPECT_NO_THROW(load_gpt2_tokenizer(tmp.path()));
  const std::string enc = read_file_text(tmp / "encoder.json");
  const std::string bpe = read_file_text(tmp / "vocab.bpe");
  auto expect_error = [&](const std::string& e, const std::string& b, const std::string& what) {
    write_file_atomic(tmp / "encoder.json", e);
    write_file_atomic(tmp / "vocab.bpe", b);
    try {
      load_gpt2_tokenizer(tmp.path());
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find(what), std::string::npos) << err.what();
    }
  };
  expect_error("{not json", bpe, "encoder.json");
  expect_error("[1, 2]", bpe, "encoder.json");
  expect_error(enc.substr(0, enc.size() / 2), bpe, "encoder.json");  // truncated
  {
    auto j = nlohmann::json::parse(enc);
    j["a"] = "x";
    expect_error(j.dump(), bpe, "not an integer");
    j = nlohmann::json::parse(enc);
    j["<|endoftext|>"] = 5;  // duplicate id
    expect_error(j.dump(), bpe, "each once");
    j = nlohmann::json::parse(enc);
    j.erase("a");
    expect_error(j.dump(), bpe, "ids must be");  // a hole in the ids
  }
  expect_error(enc, "#version: 0.2\na\n", "line 2");
  expect_error(enc, "#version: 0.2\na b c\n", "line 2");
  expect_error(enc, "#version: 0.2\nq q\n", "encoder.json does not have");
  expect_error(enc, "", "no merges");
  fs::remove(tmp / "vocab.bpe");
  EXPECT_THROW(load_gpt2_tokenizer(tmp.path()), Error);
  EXPECT_THROW(make_tokenizer("gpt2:" + tmp.path().string()), Error);
  try {
    make_tokenizer("gpt2:/nonexistent/dir");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fetch-data.sh"), std::string::npos) << e.what();
  }
}

// ---- streaming decode ---------------------------------------------------------------------------

TEST(StreamingDecoder, HoldsBackCharactersSplitAcrossTokens) {
  const auto byte = make_tokenizer("byte");
  StreamingDecoder dec(*byte);
  EXPECT_EQ(dec.push('h'), "h");
  EXPECT_EQ(dec.push(0xC3), "");  // first byte of é
  EXPECT_EQ(dec.push(0xA9), "\xc3\xa9");
  EXPECT_EQ(dec.push(0xF0), "");  // 🦀 in four tokens
  EXPECT_EQ(dec.push(0x9F), "");
  EXPECT_EQ(dec.push(0xA6), "");
  EXPECT_EQ(dec.push(0x80), "\xf0\x9f\xa6\x80");
  EXPECT_EQ(dec.push(0xFF), "\xff");  // invalid byte: passed through
  EXPECT_EQ(dec.push(0xE2), "");
  EXPECT_EQ(dec.finish(), "\xe2");  // incomplete at the end: flushed as is
  EXPECT_EQ(dec.push(256), "<|endoftext|>");
}

TEST(StreamingDecoder, Gpt2StreamEqualsDecode) {
  const Tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  const std::string text = "I \u2764\ufe0f 🦀! héllo 日本語 \xff end";
  const auto ids = tok->encode(text);
  StreamingDecoder dec(*tok);
  std::string all;
  int held = 0;
  for (const int32_t id : ids) {
    const std::string part = dec.push(id);
    if (part.empty()) ++held;
    all += part;
  }
  all += dec.finish();
  EXPECT_EQ(all, text);
  EXPECT_GT(held, 0);  // 🦀 is 12520, 99, 222: its bytes span tokens
}

// ---- save / load --------------------------------------------------------------------------------

TEST(TokenizerFiles, SaveAndLoadEveryKind) {
  TempDir tmp;
  std::vector<std::unique_ptr<Tokenizer>> toks;
  toks.push_back(make_tokenizer("byte"));
  ASSERT_NE(gpt2(), nullptr);
  toks.push_back(make_tokenizer("gpt2:" + cache_dir() + "/gpt2"));
  const std::string text = "Fourscore and seven years ago — naïve 🦀 \xff";
  for (const auto& tok : toks) {
    const std::string dir = tmp / tok->kind();
    EXPECT_FALSE(has_tokenizer(dir));
    tok->save(dir);
    EXPECT_TRUE(has_tokenizer(dir));
    const auto desc = nlohmann::json::parse(read_file_text(dir + "/difftx_tokenizer.json"));
    EXPECT_EQ(desc["type"], tok->kind());
    EXPECT_EQ(desc["vocab_size"], tok->vocab_size());
    EXPECT_EQ(desc["eos_id"], tok->eos_id());
    const auto back = load_tokenizer(dir);
    EXPECT_EQ(back->kind(), tok->kind());
    EXPECT_EQ(back->fingerprint(), tok->fingerprint());
    EXPECT_EQ(back->encode(text), tok->encode(text));
    // A directory holding a difftx_tokenizer.json is also a spec.
    EXPECT_EQ(make_tokenizer(dir)->fingerprint(), tok->fingerprint());
  }
  EXPECT_NE(toks[0]->fingerprint(), toks[1]->fingerprint());
  EXPECT_EQ(make_tokenizer("byte")->fingerprint(), toks[0]->fingerprint());
}

TEST(TokenizerFiles, DamagedOrForeignDescriptors) {
  TempDir tmp;
  EXPECT_THROW(load_tokenizer(tmp.path()), Error);  // no difftx_tokenizer.json
  EXPECT_THROW(load_tokenizer(tmp / "missing"), Error);
  write_mini_gpt2(tmp / "g", {{"a", "a"}});
  const auto tok = load_gpt2_tokenizer(tmp / "g");
  tok->save(tmp / "m");
  EXPECT_NO_THROW(load_tokenizer(tmp / "m"));
  // Files changed behind the descriptor's back.
  write_file_atomic(tmp / "m/vocab.bpe", "#version: 0.2\na a\n\n");
  try {
    load_tokenizer(tmp / "m");
    ADD_FAILURE() << "a changed vocab.bpe was not noticed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not match"), std::string::npos) << e.what();
  }
  const std::string desc = tmp / "m/difftx_tokenizer.json";
  write_file_atomic(desc, R"({"version": "1.0", "model": {"type": "BPE"}, "added_tokens": []})");
  try {
    load_tokenizer(tmp / "m");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Hugging Face"), std::string::npos) << e.what();
  }
  for (const char* bad : {"", "[]", "{\"format\": \"difftx-tokenizer\"}",
                          "{\"format\": \"difftx-tokenizer\", \"type\": \"wordpiece\"}",
                          "{\"format\": \"difftx-tokenizer\", \"type\": \"gpt2\"}",
                          "{\"format\": \"difftx-tokenizer\", \"type\": \"gpt2\", \"files\": "
                          "{\"encoder\": \"../x\", \"merges\": \"vocab.bpe\"}}"}) {
    write_file_atomic(desc, bad);
    EXPECT_THROW(load_tokenizer(tmp / "m"), Error) << bad;
  }
}

TEST(TokenizerFiles, BadSpecs) {
  TempDir tmp;
  for (const char* spec : {"", "bogus", "gpt3", "spm:", "gpt2:", "sentencepiece:/nonexistent.model",
                           "spm:/nonexistent.model"})
    EXPECT_THROW(make_tokenizer(spec), Error) << spec;
  write_file_atomic(tmp / "garbage.model", "this is not a sentencepiece model at all");
  EXPECT_THROW(make_tokenizer("spm:" + (tmp / "garbage.model")), Error);
  write_file_atomic(tmp / "empty.model", "");
  EXPECT_THROW(make_tokenizer("spm:" + (tmp / "empty.model")), Error);
  EXPECT_THROW(make_tokenizer("spm:" + tmp.path().string()), Error);  // folder without tokenizer.model
}

// ---- SentencePiece ------------------------------------------------------------------------------

// Trains a small model on the committed corpus once per model type.
std::string trained_model_dir(const std::string& type) {
  static TempDir tmp;
  const std::string dir = tmp / type;
  if (!has_tokenizer(dir)) {
    SentencePieceTrainOptions o;
    o.inputs = {fixture("corpus")};
    o.out_dir = dir;
    o.vocab_size = 320;
    o.model_type = type;
    o.character_coverage = 0.99;  // the rest of the multilingual characters use byte fallback
    train_sentencepiece(o);
  }
  return dir;
}

std::vector<std::string> spm_texts() {
  std::vector<std::string> t = {
      "",
      "Hello world",
      " leading space",
      "  two leading spaces and trailing  ",
      "Fellow-Citizens of the Senate and House of Representatives:",
      "tabs\tand\nnewlines\r\n\n  indented",
      "Zürich, São Paulo, Kraków — “quoted” ‘text’ … 🚀 ∀x ∈ ℝ",
      "日本語の文章 and 中文 and 한국어",
      "<s> </s> <unk> <0x41> look like specials but are text",
      "\u2581 the sentencepiece space symbol itself",
      std::string("nul\0inside", 10),
  };
  for (const auto& e : fs::directory_iterator(fixture("corpus")))
    t.push_back(read_file_text(e.path().string()));
  const std::string sotu = cache_dir() + "/sotu/1984_ronald_reagan_r.txt";
  if (fs::exists(sotu)) t.push_back(read_prefix(sotu, 6000));
  return t;
}

TEST(SentencePieceTokenizer, TrainsAndRoundTripsText) {
  for (const std::string type : {"unigram", "bpe"}) {
    const std::string dir = trained_model_dir(type);
    ASSERT_TRUE(fs::exists(dir + "/tokenizer.model"));
    const auto tok = load_tokenizer(dir);
    EXPECT_EQ(tok->kind(), "sentencepiece");
    EXPECT_EQ(tok->vocab_size(), 320);
    EXPECT_EQ(tok->eos_id(), 2);
    EXPECT_EQ(make_tokenizer("spm:" + dir + "/tokenizer.model")->fingerprint(), tok->fingerprint());
    EXPECT_EQ(make_tokenizer("spm:" + dir)->fingerprint(), tok->fingerprint());
    for (const auto& text : spm_texts()) expect_round_trip(*tok, text);
    // It learned something (60 pieces beyond bytes and characters): fewer tokens than bytes.
    const std::string para = "the Government of the United States and the people";
    EXPECT_LT(tok->encode(para).size(), para.size() * 9 / 10) << type;
  }
}

// Models trained by difftx keep invalid UTF-8 exactly: sentencepiece itself would turn each
// such byte into U+FFFD; difftx encodes those bytes as byte-fallback tokens of their own value.
TEST(SentencePieceTokenizer, RoundTripsInvalidUtf8AndRandomBytes) {
  const auto tok = load_tokenizer(trained_model_dir("unigram"));
  for (const auto& s : invalid_utf8_samples()) expect_round_trip(*tok, s);
  Rng rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string s = random_bytes(rng, rng.next_u64() % 120);
    ASSERT_EQ(tok->decode(tok->encode(s)), s) << "trial " << trial;
  }
  const auto bpe = load_tokenizer(trained_model_dir("bpe"));
  for (const auto& s : invalid_utf8_samples()) expect_round_trip(*bpe, s);
}

// difftx decodes with its own tables (to keep raw bytes); on valid text it must agree with
// libsentencepiece's decoder, including the dropped leading space and control symbols.
TEST(SentencePieceTokenizer, DecodeAgreesWithLibrary) {
  const std::string dir = trained_model_dir("unigram");
  const auto tok = load_tokenizer(dir);
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(dir + "/tokenizer.model").ok());
  for (const auto& text : spm_texts()) {
    const auto ids = tok->encode(text);
    // Text with U+2581 (which the library would decode as a space) is encoded differently.
    if (text.find("\u2581") == std::string::npos)
      EXPECT_EQ(std::vector<int>(ids.begin(), ids.end()), sp.EncodeAsIds(text)) << escaped(text);
    EXPECT_EQ(tok->decode(ids), sp.DecodeIds(std::vector<int>(ids.begin(), ids.end())));
  }
  // Random id sequences of non-byte pieces, with <s> </s> <unk> sprinkled in.
  Rng rng(9);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<int> ids;
    for (int k = rng.next_u64() % 12; k > 0; --k) {
      int id = static_cast<int>(rng.next_u64() % tok->vocab_size());
      if (sp.IsByte(id)) id = static_cast<int>(rng.next_u64() % 3);  // 0 <unk>, 1 <s>, 2 </s>
      ids.push_back(id);
    }
    EXPECT_EQ(tok->decode(std::vector<int32_t>(ids.begin(), ids.end())), sp.DecodeIds(ids))
        << "trial " << trial;
  }
}

TEST(SentencePieceTokenizer, StreamsLikeDecode) {
  const auto tok = load_tokenizer(trained_model_dir("unigram"));
  for (const auto& text : spm_texts()) {
    const auto ids = tok->encode(text);
    StreamingDecoder dec(*tok);
    std::string all;
    for (const int32_t id : ids) {
      const std::string part = dec.push(id);
      EXPECT_TRUE(utf8::is_valid(part) || !utf8::is_valid(text));
      all += part;
    }
    all += dec.finish();
    EXPECT_EQ(all, tok->decode(ids));
  }
}

TEST(SentencePieceTokenizer, TrainingErrors) {
  TempDir tmp;
  auto opts = [&](const std::string& out) {
    SentencePieceTrainOptions o;
    o.inputs = {fixture("corpus")};
    o.out_dir = tmp / out;
    o.vocab_size = 320;
    o.character_coverage = 0.99;
    return o;
  };
  auto expect_error = [&](const SentencePieceTrainOptions& o, const std::string& what) {
    try {
      train_sentencepiece(o);
      ADD_FAILURE() << "no error, expected: " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(o.out_dir)) << "a failed training left " << o.out_dir;
  };
  auto o = opts("a");
  o.inputs = {tmp / "no-such-file.txt"};
  expect_error(o, "not found");
  o = opts("b");
  o.inputs = {};
  expect_error(o, "no training data");
  fs::create_directories(tmp / "emptydir");
  o = opts("c");
  o.inputs = {tmp / "emptydir"};
  expect_error(o, "no .txt files");
  write_file_atomic(tmp / "empty.txt", "");
  o = opts("d");
  o.inputs = {tmp / "empty.txt"};
  expect_error(o, "empty");
  write_file_atomic(tmp / "blank.txt", "\n\n\r\n");
  o = opts("e");
  o.inputs = {tmp / "blank.txt"};
  expect_error(o, "no text");
  o = opts("f");
  o.vocab_size = 100;
  expect_error(o, "too small");
  o = opts("g");
  o.vocab_size = 270;  // above the floor, but the corpus needs more characters than that
  expect_error(o, "Vocabulary size is smaller than required_chars");
  o = opts("h");
  o.vocab_size = 100000;  // more pieces than the tiny corpus has
  expect_error(o, "Vocabulary size too high");
  o = opts("i");
  o.model_type = "wordpiece";
  expect_error(o, "unknown sentencepiece model type");
  // An existing, non-empty output directory is refused and left alone.
  o = opts("j");
  fs::create_directories(o.out_dir);
  write_file_atomic(o.out_dir + "/keep.txt", "x");
  EXPECT_THROW(train_sentencepiece(o), Error);
  EXPECT_EQ(read_file_text(o.out_dir + "/keep.txt"), "x");
  EXPECT_FALSE(fs::exists(o.out_dir + "/tokenizer.model"));
}

TEST(SentencePieceTokenizer, UnreadableModel) {
  TempDir tmp;
  const std::string model = trained_model_dir("unigram") + "/tokenizer.model";
  const std::string bytes = read_file_text(model);
  write_file_atomic(tmp / "cut.model", bytes.substr(0, bytes.size() / 3));
  EXPECT_THROW(load_sentencepiece_tokenizer(tmp / "cut.model"), Error);
  EXPECT_THROW(load_sentencepiece_tokenizer(tmp / "none.model"), Error);
  EXPECT_THROW(load_sentencepiece_tokenizer(tmp.path()), Error);
  const auto tok = load_sentencepiece_tokenizer(model);
  EXPECT_THROW(tok->decode(std::vector<int32_t>{tok->vocab_size()}), Error);
}

// A model trained with sentencepiece's defaults (NFKC, whitespace removal, no byte fallback)
// loads, with a warning that it cannot round-trip every text, and behaves as the library does.
std::vector<std::string> g_warnings;
TEST(SentencePieceTokenizer, LoadsForeignModelsWithAWarning) {
  TempDir tmp;
  std::string lines = read_file_text(fixture("corpus/1790_george_washington_n.txt"));
  for (size_t p = lines.find(". "); p != std::string::npos; p = lines.find(". ", p))
    lines[++p] = '\n';
  write_file_atomic(tmp / "lines.txt", lines);  // the trainer wants short lines
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      {{"input", tmp / "lines.txt"},
       {"model_prefix", tmp / "plain"},
       {"vocab_size", "200"},
       {"minloglevel", "2"}});
  ASSERT_TRUE(status.ok()) << status.ToString();
  g_warnings.clear();
  set_warning_sink([](const std::string& w) { g_warnings.push_back(w); });
  const auto tok = load_sentencepiece_tokenizer(tmp / "plain.model");
  set_warning_sink(nullptr);
  ASSERT_EQ(g_warnings.size(), 1u);
  EXPECT_NE(g_warnings[0].find("no byte fallback"), std::string::npos) << g_warnings[0];
  EXPECT_NE(g_warnings[0].find("normalises text (nmt_nfkc)"), std::string::npos) << g_warnings[0];
  EXPECT_NE(g_warnings[0].find("removes extra whitespace"), std::string::npos) << g_warnings[0];
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(tmp / "plain.model").ok());
  const std::string text = "  the  United States  ";
  const auto ids = tok->encode(text);
  EXPECT_EQ(std::vector<int>(ids.begin(), ids.end()), sp.EncodeAsIds(text));
  EXPECT_EQ(tok->decode(ids), "the United States");  // what the library gives too
  EXPECT_EQ(tok->decode(ids), sp.DecodeIds(std::vector<int>(ids.begin(), ids.end())));
  EXPECT_EQ(tok->decode(tok->encode("日")), " \u2047 ");  // <unk>, as the library decodes it
}

}  // namespace
}  // namespace difftx
