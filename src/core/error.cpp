#include "core/error.h"

#include <cstdio>

namespace difftx {
namespace {
void default_sink(const std::string& message) {
  std::fprintf(stderr, "difftx: warning: %s\n", message.c_str());
}
WarningSink g_sink = default_sink;
}  // namespace

void set_warning_sink(WarningSink sink) { g_sink = sink ? sink : default_sink; }
void warn(const std::string& message) { g_sink(message); }

}  // namespace difftx
