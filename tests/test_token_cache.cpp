// Token caches are validated, never trusted (issue 18): the cache image round-trips, and every
// kind of damage (corrupt header, enlarged or overflowing token count, truncation, a flipped
// id, other sources or tokenizer) is refused; TokenData rebuilds a bad or stale cache and
// never reads the file again after opening it (so a cache that shrinks cannot hurt).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "io/tokenizer.h"
#include "test_util.h"
#include "train/dataset.h"
#include "train/token_cache.h"

namespace difftx {
namespace {
using nlohmann::json;

const json kIdentity{{"tokenizer", "byte-0123"}, {"sources", json::array({{{"path", "/a.txt"}, {"bytes", 5}}})}};
const std::vector<uint32_t> kIds{104, 101, 108, 108, 111, 256};

std::optional<std::vector<uint32_t>> decode(const std::vector<uint8_t>& b, std::string* why,
                                            const json& identity = kIdentity, int32_t vocab = 257) {
  return decode_token_cache(b.data(), b.size(), identity, vocab, why);
}
uint64_t header_len(const std::vector<uint8_t>& b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[8 + i];
  return n;
}
// The image with its header JSON replaced (same length or not: the length field follows).
std::vector<uint8_t> with_header(const std::vector<uint8_t>& b, const std::string& header) {
  const uint64_t start = (16 + header_len(b) + 63) / 64 * 64;
  std::vector<uint8_t> body(b.begin() + static_cast<long>(start), b.end());
  std::vector<uint8_t> out(b.begin(), b.begin() + 8);  // the magic
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
  for (char ch : header) out.push_back(static_cast<uint8_t>(ch));
  out.resize((16 + header.size() + 63) / 64 * 64, 0);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}
std::string header_of(const std::vector<uint8_t>& b) {
  return std::string(b.begin() + 16, b.begin() + 16 + static_cast<long>(header_len(b)));
}

TEST(TokenCache, RoundTrip) {
  const auto image = encode_token_cache(kIdentity, 257, kIds);
  std::string why;
  const auto ids = decode(image, &why);
  ASSERT_TRUE(ids.has_value()) << why;
  EXPECT_EQ(*ids, kIds);
}

TEST(TokenCache, RefusesOtherSourcesOrTokenizer) {
  const auto image = encode_token_cache(kIdentity, 257, kIds);
  std::string why;
  json other = kIdentity;
  other["sources"][0]["bytes"] = 6;
  EXPECT_FALSE(decode(image, &why, other).has_value());
  EXPECT_NE(why.find("other sources"), std::string::npos) << why;
  other = kIdentity;
  other["tokenizer"] = "gpt2-99";
  EXPECT_FALSE(decode(image, &why, other).has_value());
  EXPECT_NE(why.find("tokenizer"), std::string::npos) << why;
}

TEST(TokenCache, RefusesCorruptHeaders) {
  const auto image = encode_token_cache(kIdentity, 257, kIds);
  std::string why;
  auto bad = image;
  bad[0] = 'X';  // magic
  EXPECT_FALSE(decode(bad, &why).has_value());
  bad = image;
  bad[16] = '[';  // not a JSON object any more
  EXPECT_FALSE(decode(bad, &why).has_value());
  bad = image;
  bad[15] = 0x7f;  // header length far beyond the file
  EXPECT_FALSE(decode(bad, &why).has_value());
  EXPECT_NE(why.find("longer than the file"), std::string::npos) << why;
  bad = image;
  for (int i = 8; i < 16; ++i) bad[i] = 0xff;  // 2^64 - 1: must not wrap
  EXPECT_FALSE(decode(bad, &why).has_value());
  for (const char* tokens : {"\"6\"", "-6", "6.5", "null"}) {
    std::string h = header_of(image);
    const size_t at = h.find("\"tokens\":6");
    ASSERT_NE(at, std::string::npos) << h;
    h.replace(at, std::strlen("\"tokens\":6"), std::string("\"tokens\":") + tokens);
    EXPECT_FALSE(decode(with_header(image, h), &why).has_value()) << tokens;
  }
  EXPECT_FALSE(decode(std::vector<uint8_t>(image.begin(), image.begin() + 10), &why).has_value());
  EXPECT_FALSE(decode({}, &why).has_value());
}

// An enlarged count, including ones whose x 4 wraps around 2^64 to the real size.
TEST(TokenCache, RefusesCountsThatDisagreeWithTheFileSize) {
  const auto image = encode_token_cache(kIdentity, 257, kIds);
  std::string why;
  for (const uint64_t n : {uint64_t{7}, uint64_t{5}, (uint64_t{1} << 62) + 6, (uint64_t{1} << 63) + 6,
                           std::numeric_limits<uint64_t>::max()}) {
    std::string h = header_of(image);
    const size_t at = h.find("\"tokens\":6");
    h.replace(at, std::strlen("\"tokens\":6"), "\"tokens\":" + std::to_string(n));
    EXPECT_FALSE(decode(with_header(image, h), &why).has_value()) << n;
  }
}

TEST(TokenCache, RefusesTruncationAndFlippedIds) {
  const auto image = encode_token_cache(kIdentity, 257, kIds);
  std::string why;
  for (size_t cut : {size_t{1}, size_t{4}, size_t{3}, image.size() - 20})
    EXPECT_FALSE(decode(std::vector<uint8_t>(image.begin(), image.end() - static_cast<long>(cut)), &why).has_value())
        << cut;
  auto flipped = image;
  flipped[flipped.size() - 1] ^= 0x80;  // the last id's top bit: a negative int32
  EXPECT_FALSE(decode(flipped, &why).has_value());
  EXPECT_NE(why.find("beyond the tokenizer's vocabulary"), std::string::npos) << why;
  flipped = image;
  flipped[flipped.size() - 4] ^= 0x02;  // 256 -> 258: one past the vocabulary
  EXPECT_FALSE(decode(flipped, &why).has_value());
  // The same image is fine for a tokenizer that has the id.
  EXPECT_TRUE(decode(flipped, &why, kIdentity, 300).has_value()) << why;
}

// TokenData: a corrupt cache is rebuilt (with a warning), a changed source gets a new cache,
// and the data stays usable when its cache file is truncated after opening.
std::vector<std::string> g_warnings;
void collect(const std::string& w) { g_warnings.push_back(w); }

TEST(TokenCache, TokenDataRebuildsBadCachesAndFollowsItsSources) {
  test::TempDir dir;
  const std::string text = dir / "data.txt", cache = dir / "cache";
  { std::ofstream(text) << "hello, token cache"; }
  const auto tok = make_byte_tokenizer();
  const auto first = TokenData::open(text, *tok, cache);
  ASSERT_EQ(first->size(), 19);  // 18 bytes + end of text
  const std::string path = first->cache_path();
  std::vector<int32_t> want(static_cast<size_t>(first->size()));
  for (int64_t i = 0; i < first->size(); ++i) want[static_cast<size_t>(i)] = first->at(i);

  set_warning_sink(collect);
  // Damage the cache in three ways; each time the next open rebuilds it and warns.
  auto damage = [&](auto how) {
    std::vector<char> b;
    {
      std::ifstream in(path, std::ios::binary);
      b.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    how(b);
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<long>(b.size()));
    g_warnings.clear();
    const auto again = TokenData::open(text, *tok, cache);
    std::vector<int32_t> got(static_cast<size_t>(again->size()));
    for (int64_t i = 0; i < again->size(); ++i) got[static_cast<size_t>(i)] = again->at(i);
    EXPECT_EQ(got, want);
    EXPECT_EQ(g_warnings.size(), 1u);
    const auto clean = TokenData::open(text, *tok, cache);  // rebuilt: no warning now
    EXPECT_EQ(g_warnings.size(), 1u);
  };
  damage([](std::vector<char>& b) { b.back() = static_cast<char>(0x80); });  // flipped id
  damage([](std::vector<char>& b) { b.resize(b.size() - 6); });              // truncated
  damage([](std::vector<char>& b) { b[26] = '}'; });                         // corrupt header
  set_warning_sink(nullptr);

  // A changed source is another cache (the old one is not reused).
  { std::ofstream(text) << "hello, changed cache"; }
  const auto changed = TokenData::open(text, *tok, cache);
  EXPECT_NE(changed->cache_path(), path);
  EXPECT_EQ(changed->size(), 21);
  EXPECT_EQ(changed->at(7), 'c');

  // The cache shrinking under an open TokenData does not matter: it lives in memory.
  ASSERT_EQ(::truncate(changed->cache_path().c_str(), 20), 0);
  std::vector<int32_t> window(4);
  changed->even_window(1, 2, 3, window.data());
  EXPECT_EQ(window, (std::vector<int32_t>{'c', 'h', 'e', 256}));
  EXPECT_THROW(changed->even_window(2, 2, 3, window.data()), Error);
}

TEST(TokenCache, CachePathThatIsAFifoIsRefused) {
  test::TempDir dir;
  const std::string text = dir / "data.txt", cache = dir / "cache";
  { std::ofstream(text) << "fifo"; }
  const auto tok = make_byte_tokenizer();
  const std::string path = TokenData::open(text, *tok, cache)->cache_path();
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  try {
    TokenData::open(text, *tok, cache);
    ADD_FAILURE() << "a FIFO as the cache was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace difftx
