#pragma once
// Writing results to standard output with every failure reported (a full disk or a closed
// pipe must not pass for success). main() checks the buffered rest once more at exit.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"

namespace difftx::cli {

// Writes bytes and flushes them (for streaming output); throws Error when either fails.
inline void write_stdout(const std::string& bytes) {
  errno = 0;
  const bool ok = (bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size()) &&
                  std::fflush(stdout) == 0 && !std::ferror(stdout);
  if (!ok)
    throw Error(std::string("cannot write to standard output: ") +
                (errno != 0 ? std::strerror(errno) : "write error"));
}

}  // namespace difftx::cli
