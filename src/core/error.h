#pragma once
// Errors the library reports to its caller. The CLI turns each into one line
// "difftx: error: ..." and exit status 2; the library itself never prints or exits.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace difftx {

// Bad input (file, config, flag, value): the user can fix it.
// An error about one option value names the option's *field* (e.g. "batch", "min_lr_ratio"),
// never a command-line flag: the message starts with the field name and field() returns it,
// so the CLI can show the flag the user typed instead (src/cli/options.h).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string field = {})
      : std::runtime_error(what), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

namespace detail {
template <class... Parts>
[[noreturn]] __attribute__((noinline, cold)) void fail_with(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw Error(out.str());
}

template <class... Parts>
[[noreturn]] __attribute__((noinline, cold)) void fail_field(const char* field,
                                                               const Parts&... parts) {
  std::ostringstream out;
  out << field;
  (out << ... << parts);
  throw Error(out.str(), field);
}
}  // namespace detail

// Throws Error when cond is false, with the message made of `parts` streamed together
// (strings, numbers): check(t < n, "token ", t, " is out of range [0, ", n, ")").
// The message is built only on failure, so a check that passes costs one branch, even inside
// per-token loops. Passing a prebuilt std::string works too but builds it eagerly.
template <class... Parts>
inline void check(bool cond, const Parts&... parts) {
  if (__builtin_expect(!cond, 0)) detail::fail_with(parts...);
}

// Like check, for the value of an option field: the message is the field name followed by
// `parts`, and the Error carries the field: check_field(b >= 1, "batch", " must be >= 1").
template <class... Parts>
inline void check_field(bool cond, const char* field, const Parts&... parts) {
  if (__builtin_expect(!cond, 0)) detail::fail_field(field, parts...);
}

// Called for recoverable problems that are not errors (e.g. an unknown tensor in a checkpoint).
// The default sink writes "difftx: warning: ..." to stderr; tests may replace it.
using WarningSink = void (*)(const std::string&);
void set_warning_sink(WarningSink sink);
void warn(const std::string& message);

}  // namespace difftx
