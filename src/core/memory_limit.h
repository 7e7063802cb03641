#pragma once
// How much memory this process may use, derived from the machine (physical memory, the
// cgroup's memory.max, RLIMIT_AS), and a check that refuses a size before anything is
// allocated, with the figure in the message.
#include <cstdint>
#include <string>

#include "core/uint128.h"

namespace difftx {

// Bytes this process can expect to use at most (never 0: unknown limits count as none).
uint64_t usable_memory_bytes();

// Throws Error "<what> needs X GiB but this machine allows Y GiB; <advice>" when bytes exceed
// usable_memory_bytes(). bytes is 128-bit so that callers can multiply sizes without overflow.
void check_fits_in_memory(uint128 bytes, const std::string& what, const std::string& advice);

// "12.3 GiB" (or "4.0e+12 GiB" for absurd sizes).
std::string format_gib(uint128 bytes);

}  // namespace difftx
