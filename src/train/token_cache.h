#pragma once
// The binary token cache behind TokenData, validated on every read and never trusted:
//
//   "DTXTOK01"  u64 little-endian header length  header JSON  zero padding to 64 bytes  u32 ids
//
// The header is {"tokenizer": fingerprint, "sources": [...], "tokens": N, "vocab_size": V}.
// A cache is accepted only when the header is a JSON object, its identity (tokenizer and
// sources) equals the caller's, N x 4 bytes end exactly at the end of the file (checked in
// overflow-free arithmetic) and every id is below the tokenizer's vocabulary.
//
// The whole cache is read into memory with read() (not memory-mapped): a cache truncated or
// rewritten by another process while this one trains can then never end it with SIGBUS, and
// the cost is small next to the source text, which is read anyway to hash it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace difftx {

// identity: {"tokenizer": ..., "sources": ...}; the cache image (header + ids).
std::vector<uint8_t> encode_token_cache(const nlohmann::json& identity, int32_t vocab_size,
                                        const std::vector<uint32_t>& ids);

// The ids of a cache image, or nullopt with *why saying what is wrong ("has a corrupt header",
// "was made from other sources", "holds token id 70000 beyond the vocabulary of 50257", ...).
std::optional<std::vector<uint32_t>> decode_token_cache(const uint8_t* data, size_t size,
                                                        const nlohmann::json& identity,
                                                        int32_t vocab_size, std::string* why);

// Reads and decodes the cache file at path: nullopt with *why empty when there is none,
// nullopt with *why set when it is invalid. A path that exists but is not a regular file is an
// Error (naming it), as everywhere in difftx.
std::optional<std::vector<uint32_t>> read_token_cache(const std::string& path,
                                                      const nlohmann::json& identity,
                                                      int32_t vocab_size, std::string* why);

}  // namespace difftx
