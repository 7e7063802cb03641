#include "train/token_cache.h"

#include <sys/stat.h>

#include <cstring>

#include "core/files.h"

namespace difftx {
namespace {
constexpr char kMagic[8] = {'D', 'T', 'X', 'T', 'O', 'K', '0', '1'};
constexpr uint64_t kPrefix = 16;  // magic + header length

uint64_t get_u64le(const uint8_t* p) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
  return n;
}
void put_u64le(uint8_t* p, uint64_t n) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(n >> (8 * i));
}
uint64_t ids_start(uint64_t header_len) { return (kPrefix + header_len + 63) / 64 * 64; }

std::optional<std::vector<uint32_t>> invalid(std::string* why, const std::string& what) {
  if (why) *why = what;
  return std::nullopt;
}
}  // namespace

std::vector<uint8_t> encode_token_cache(const nlohmann::json& identity, int32_t vocab_size,
                                        const std::vector<uint32_t>& ids) {
  nlohmann::json header = identity;
  header["tokens"] = ids.size();
  header["vocab_size"] = vocab_size;
  const std::string h = header.dump();
  const uint64_t start = ids_start(h.size());
  std::vector<uint8_t> bytes(start + ids.size() * 4, 0);
  std::memcpy(bytes.data(), kMagic, 8);
  put_u64le(bytes.data() + 8, h.size());
  std::memcpy(bytes.data() + kPrefix, h.data(), h.size());
  for (size_t i = 0; i < ids.size(); ++i)  // little-endian whatever the host
    for (int k = 0; k < 4; ++k) bytes[start + 4 * i + k] = static_cast<uint8_t>(ids[i] >> (8 * k));
  return bytes;
}

std::optional<std::vector<uint32_t>> decode_token_cache(const uint8_t* data, size_t size,
                                                        const nlohmann::json& identity,
                                                        int32_t vocab_size, std::string* why) {
  if (size < kPrefix || std::memcmp(data, kMagic, 8) != 0)
    return invalid(why, "is not a difftx token cache (bad magic)");
  // Every size below is compared against what is left of the file before it is added, so no
  // sum or product can wrap.
  const uint64_t hlen = get_u64le(data + 8);
  if (hlen > size - kPrefix) return invalid(why, "has a header longer than the file");
  const uint64_t start = ids_start(hlen);
  if (start > size) return invalid(why, "is truncated inside its header");
  const auto h = nlohmann::json::parse(data + kPrefix, data + kPrefix + hlen, nullptr, false);
  if (h.is_discarded() || !h.is_object()) return invalid(why, "has a corrupt header");
  if (!h.contains("tokens") || !h["tokens"].is_number_unsigned())
    return invalid(why, "has no token count in its header");
  const uint64_t n = h["tokens"].get<uint64_t>();
  const uint64_t body = size - start;
  if (body % 4 != 0 || n != body / 4)
    return invalid(why, "holds " + std::to_string(body / 4) + " ids where its header says " +
                            std::to_string(n) + " (truncated or corrupt)");
  if (!h.contains("tokenizer") || h["tokenizer"] != identity["tokenizer"])
    return invalid(why, "was made by another tokenizer");
  if (!h.contains("sources") || h["sources"] != identity["sources"])
    return invalid(why, "was made from other sources");
  std::vector<uint32_t> ids(static_cast<size_t>(n));
  const uint8_t* p = data + start;
  for (size_t i = 0; i < ids.size(); ++i, p += 4) {
    const uint32_t id = static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                        static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
    if (id >= static_cast<uint32_t>(vocab_size))
      return invalid(why, "holds token id " + std::to_string(id) + " at position " +
                              std::to_string(i) + ", beyond the tokenizer's vocabulary of " +
                              std::to_string(vocab_size));
    ids[i] = id;
  }
  return ids;
}

std::optional<std::vector<uint32_t>> read_token_cache(const std::string& path,
                                                      const nlohmann::json& identity,
                                                      int32_t vocab_size, std::string* why) {
  if (why) why->clear();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;  // no cache yet
  const std::vector<uint8_t> bytes = read_file_bytes(path);  // refuses FIFOs, devices, folders
  return decode_token_cache(bytes.data(), bytes.size(), identity, vocab_size, why);
}

}  // namespace difftx
