#pragma once
// Errors the library reports to its caller. The CLI turns each into one line
// "difftx: error: ..." and exit status 2; the library itself never prints or exits.
#include <stdexcept>
#include <string>

namespace difftx {

// Bad input (file, config, flag, value): the user can fix it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error(message) when cond is false.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

// Called for recoverable problems that are not errors (e.g. an unknown tensor in a checkpoint).
// The default sink writes "difftx: warning: ..." to stderr; tests may replace it.
using WarningSink = void (*)(const std::string&);
void set_warning_sink(WarningSink sink);
void warn(const std::string& message);

}  // namespace difftx
