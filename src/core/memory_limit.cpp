#include "core/memory_limit.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "core/error.h"

namespace difftx {
namespace {
uint64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}
// cgroup v2 limit of this process's group ("max" or absent: none).
uint64_t cgroup_memory_max() {
  std::ifstream in("/sys/fs/cgroup/memory.max");
  std::string s;
  if (!(in >> s) || s == "max") return 0;
  try {
    return std::stoull(s);
  } catch (...) {
    return 0;
  }
}
uint64_t address_space_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<uint64_t>(lim.rlim_cur);
}
}  // namespace

uint64_t usable_memory_bytes() {
  uint64_t limit = UINT64_MAX;
  for (uint64_t l : {physical_memory(), cgroup_memory_max(), address_space_limit()})
    if (l > 0) limit = std::min(limit, l);
  return limit;
}

std::string format_gib(uint128 bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

void check_fits_in_memory(uint128 bytes, const std::string& what, const std::string& advice) {
  const uint64_t limit = usable_memory_bytes();
  if (bytes > limit)
    throw Error(what + " needs " + format_gib(bytes) + " but this machine allows " +
                format_gib(limit) + "; " + advice);
}

}  // namespace difftx
