#include "train/dataset.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "io/tokenizer.h"
#include "train/token_cache.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ULL) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}
std::string hex(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}
}  // namespace

std::string default_cache_dir() {
  if (const char* d = std::getenv("DIFFTX_CACHE"); d && *d) return std::string(d) + "/tokens";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/difftx/tokens";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/difftx/tokens";
  return ".difftx-cache/tokens";
}

std::vector<std::string> resolve_sources(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  if (path.empty()) throw Error("no data path given");
  if (fs::is_directory(path, ec)) {
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it); it.increment(ec))
      if (it->is_regular_file(ec) && it->path().filename().string()[0] != '.')
        files.push_back(it->path().string());
  } else if (fs::is_regular_file(path, ec)) {
    files.push_back(path);
  } else if (path.find_first_of("*?[") != std::string::npos) {
    glob_t g{};
    if (::glob(path.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        if (fs::is_regular_file(g.gl_pathv[i], ec)) files.push_back(g.gl_pathv[i]);
    ::globfree(&g);
  }
  if (files.empty()) throw Error("no data files found at " + path + " (a file, folder or glob)");
  std::sort(files.begin(), files.end());
  return files;
}

std::unique_ptr<TokenData> TokenData::open(const std::string& path, const Tokenizer& tok,
                                           const std::string& cache_dir) {
  const std::vector<std::string> files = resolve_sources(path);
  // Identity of the inputs: tokenizer fingerprint and every file's name and content hash.
  nlohmann::json sources = nlohmann::json::array();
  std::vector<std::vector<uint8_t>> contents;
  int64_t total_bytes = 0;
  uint64_t key = fnv1a(tok.fingerprint().data(), tok.fingerprint().size());
  for (const auto& f : files) {
    contents.push_back(read_file_bytes(f));
    const auto& c = contents.back();
    const std::string h = hex(fnv1a(c.data(), c.size()));
    sources.push_back({{"path", fs::absolute(f).lexically_normal().string()}, {"bytes", c.size()}, {"fnv1a", h}});
    key = fnv1a(h.data(), h.size(), fnv1a(f.data(), f.size(), key));
    total_bytes += static_cast<int64_t>(c.size());
  }
  if (total_bytes == 0) throw Error("data at " + path + " is empty");
  const nlohmann::json identity{{"tokenizer", tok.fingerprint()}, {"sources", sources}};
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) throw Error("cannot create the token cache folder " + cache_dir + ": " + ec.message());
  const std::string cache = (fs::path(cache_dir) / (hex(key) + ".tokens")).string();

  auto data = std::unique_ptr<TokenData>(new TokenData());
  data->cache_path_ = cache;
  data->source_bytes_ = total_bytes;
  std::string why;
  if (auto ids = read_token_cache(cache, identity, tok.vocab_size(), &why)) {
    data->ids_ = std::move(*ids);
    if (!data->ids_.empty()) return data;
    why = "holds no tokens";
  }

  // Build: tokenise each file, separate documents by end-of-text, write atomically.
  std::vector<uint32_t> ids;
  for (const auto& c : contents) {
    const auto t = tok.encode(std::string_view(reinterpret_cast<const char*>(c.data()), c.size()));
    ids.insert(ids.end(), t.begin(), t.end());
    if (tok.eos_id() >= 0) ids.push_back(static_cast<uint32_t>(tok.eos_id()));
  }
  if (ids.empty()) throw Error("the data at " + path + " gives no tokens");
  const std::vector<uint8_t> image = encode_token_cache(identity, tok.vocab_size(), ids);
  write_file_atomic(cache, image.data(), image.size());
  // Said only once the rebuild worked, so that a failure stays a single error line.
  if (!why.empty()) warn("the token cache " + cache + " " + why + "; rebuilt it");
  data->ids_ = std::move(ids);
  return data;
}

void TokenData::sample_windows(uint64_t seed, int64_t step, int64_t B, int64_t T,
                               std::vector<int32_t>& tokens) const {
  const int64_t n = size();
  check(B >= 1 && T >= 1, "a batch needs at least one window of one token");
  check(n >= T + 1, "the data has ", n, " tokens, fewer than one window of seq + 1 = ", T + 1,
        "; use more data or a shorter seq");
  Rng rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) + 1);
  tokens.resize(static_cast<size_t>(B * (T + 1)));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - T)));
    for (int64_t t = 0; t <= T; ++t) tokens[b * (T + 1) + t] = static_cast<int32_t>(ids_[start + t]);
  }
}

void TokenData::even_window(int64_t i, int64_t count, int64_t T, int32_t* out) const {
  const int64_t n = size();
  check(T >= 1 && count >= 1 && i >= 0 && i < count, "window ", i, " of ", count,
        " (length ", T, ") does not exist");
  check(n >= T + 1, "the validation data has " + std::to_string(n) +
                         " tokens, fewer than one window of " + std::to_string(T + 1));
  const int64_t span = n - T - 1;
  const int64_t start = count > 1 ? span * i / (count - 1) : 0;
  for (int64_t t = 0; t <= T; ++t) out[t] = static_cast<int32_t>(ids_[start + t]);
}

}  // namespace difftx
