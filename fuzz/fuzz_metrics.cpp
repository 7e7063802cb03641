// libFuzzer target: metrics.jsonl reading (parse_metrics_jsonl) on arbitrary text. A malformed
// file must end in difftx::Error; any other exception, a crash or a sanitizer report is a
// finding. The records read must read back the same after writing them out again.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "train/metrics.h"

namespace {
// Equal, with NaN equal to NaN (non-finite values are written as null and read back as NaN).
bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)) || (!std::isfinite(a) && std::isnan(b)); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  difftx::MetricsHistory h;
  try {
    h = difftx::parse_metrics_jsonl(text, "fuzz");
  } catch (const difftx::Error&) {
    return 0;
  }
  std::string out;
  for (const auto& r : h.steps) out += difftx::to_json_line(r) + "\n";
  for (const auto& r : h.evals) out += difftx::to_json_line(r) + "\n";
  for (const auto& r : h.monitors) out += difftx::to_json_line(r) + "\n";
  const difftx::MetricsHistory back = difftx::parse_metrics_jsonl(out, "fuzz round trip");
  if (back.steps.size() != h.steps.size() || back.evals.size() != h.evals.size() ||
      back.monitors.size() != h.monitors.size())
    std::abort();
  for (size_t i = 0; i < h.steps.size(); ++i)
    if (back.steps[i].step != h.steps[i].step || !same(h.steps[i].loss, back.steps[i].loss))
      std::abort();
  for (size_t i = 0; i < h.evals.size(); ++i)
    if (!same(h.evals[i].val_loss, back.evals[i].val_loss)) std::abort();
  for (size_t i = 0; i < h.monitors.size(); ++i)
    if (back.monitors[i].lambda.size() != h.monitors[i].lambda.size()) std::abort();
  return 0;
}
