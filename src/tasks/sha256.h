#pragma once
// SHA-256 (FIPS 180-4) of bytes, as lowercase hex: the identity of a task data file recorded in
// every result (scripts/fetch-task-data.sh hashes the same way with sha256sum).
#include <string>
#include <string_view>

namespace difftx {

std::string sha256_hex(std::string_view bytes);

}  // namespace difftx
