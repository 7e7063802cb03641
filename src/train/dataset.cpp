#include "train/dataset.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "io/tokenizer.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {
constexpr char kMagic[8] = {'D', 'T', 'X', 'T', 'O', 'K', '0', '1'};

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
  nlohmann::json header{{"tokenizer", tok.fingerprint()}, {"sources", sources}};
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) throw Error("cannot create the token cache folder " + cache_dir + ": " + ec.message());
  const std::string cache = (fs::path(cache_dir) / (hex(key) + ".tokens")).string();

  auto data = std::unique_ptr<TokenData>(new TokenData());
  data->cache_path_ = cache;
  data->source_bytes_ = total_bytes;
  auto try_map = [&]() -> bool {
    const int fd = ::open(cache.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const off_t size = ::lseek(fd, 0, SEEK_END);
    void* m = size > 16 ? ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    ::close(fd);
    if (m == MAP_FAILED) return false;
    const auto* p = static_cast<const uint8_t*>(m);
    uint64_t hlen = 0;
    std::memcpy(&hlen, p + 8, 8);
    bool ok = std::memcmp(p, kMagic, 8) == 0 && hlen <= static_cast<uint64_t>(size) - 16;
    if (ok) {
      const auto h = nlohmann::json::parse(p + 16, p + 16 + hlen, nullptr, false);
      const uint64_t start = (16 + hlen + 63) / 64 * 64;
      ok = !h.is_discarded() && h.value("tokenizer", "") == header["tokenizer"] &&
           h.value("sources", nlohmann::json()) == header["sources"] && h.contains("tokens") &&
           start + h["tokens"].get<uint64_t>() * 4 == static_cast<uint64_t>(size);
      if (ok) {
        data->map_ = m;
        data->map_size_ = static_cast<size_t>(size);
        data->n_ = h["tokens"].get<int64_t>();
        data->ids_ = reinterpret_cast<const uint32_t*>(p + start);
        return true;
      }
    }
    ::munmap(m, static_cast<size_t>(size));
    return false;
  };
  if (try_map()) return data;

  // Build: tokenise each file, separate documents by end-of-text, write atomically.
  std::vector<uint32_t> ids;
  for (const auto& c : contents) {
    const auto t = tok.encode(std::string_view(reinterpret_cast<const char*>(c.data()), c.size()));
    ids.insert(ids.end(), t.begin(), t.end());
    if (tok.eos_id() >= 0) ids.push_back(static_cast<uint32_t>(tok.eos_id()));
  }
  header["tokens"] = ids.size();
  const std::string h = header.dump();
  const uint64_t hlen = h.size(), start = (16 + hlen + 63) / 64 * 64;
  std::vector<uint8_t> bytes(start + ids.size() * 4, 0);
  std::memcpy(bytes.data(), kMagic, 8);
  std::memcpy(bytes.data() + 8, &hlen, 8);
  std::memcpy(bytes.data() + 16, h.data(), hlen);
  std::memcpy(bytes.data() + start, ids.data(), ids.size() * 4);
  write_file_atomic(cache, bytes.data(), bytes.size());
  if (!try_map()) throw Error("cannot read back the token cache " + cache);
  return data;
}

TokenData::~TokenData() {
  if (map_) ::munmap(map_, map_size_);
}

void TokenData::sample_windows(uint64_t seed, int64_t step, int64_t B, int64_t T,
                               std::vector<int32_t>& tokens) const {
  check(n_ >= T + 1, "the data has ", n_, " tokens, fewer than one window of seq + 1 = ", T + 1,
        "; use more data or a shorter seq");
  Rng rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) + 1);
  tokens.resize(static_cast<size_t>(B * (T + 1)));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n_ - T)));
    for (int64_t t = 0; t <= T; ++t) tokens[b * (T + 1) + t] = static_cast<int32_t>(ids_[start + t]);
  }
}

void TokenData::even_window(int64_t i, int64_t count, int64_t T, int32_t* out) const {
  check(n_ >= T + 1, "the validation data has " + std::to_string(n_) +
                         " tokens, fewer than one window of " + std::to_string(T + 1));
  const int64_t span = n_ - T - 1;
  const int64_t start = count > 1 ? span * i / (count - 1) : 0;
  for (int64_t t = 0; t <= T; ++t) out[t] = static_cast<int32_t>(ids_[start + t]);
}

}  // namespace difftx
