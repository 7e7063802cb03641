#include "analysis/plot_axes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/error.h"

namespace difftx {

namespace {

constexpr double kMax = std::numeric_limits<double>::max();

double clamp_finite(double v) { return std::clamp(v, -kMax, kMax); }

// The power of ten at or below x > 0, and x's multiple of it (about 1 to 10).
double decade_of(double x) { return std::pow(10.0, std::floor(std::log10(x))); }

// The nice step (1, 2 or 5 times a power of ten) nearest at or above raw > 0; infinite when
// there is none below the largest double.
double nice_step_above(double raw) {
  const double p = decade_of(raw);
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

// The nice step just below a nice step.
double nice_step_below(double step) {
  const double p = decade_of(step * (1 + 1e-9));
  const double m = step / p;
  return m > 4 ? 2 * p : m > 1.5 ? p : 0.5 * p;
}

// Multiples of step inside [lo, hi] (a little slack for rounding, then clamped into the
// range), at most limit + 1 of them.
std::vector<double> multiples(double lo, double hi, double step, size_t limit) {
  std::vector<double> t;
  const double first = std::ceil(lo / step - 1e-9) * step;
  double bound = hi + step * 1e-9;
  if (!std::isfinite(bound)) bound = hi;  // hi near the largest double
  for (double v = first; std::isfinite(v) && v <= bound && t.size() <= limit;
       v = first + static_cast<double>(t.size()) * step) {
    const double tick = std::abs(v) < step * 1e-9 ? 0.0 : std::clamp(v, lo, hi);
    if (t.empty() || tick != t.back()) t.push_back(tick);
    else break;  // the step is below the doubles' resolution here: no further progress
  }
  return t;
}

// Formats v with the decimals that `step` needs, after dividing both by div (1, 1e3, 1e6), with
// a unit suffix.
std::string fixed_label(double v, double step, double div, const char* suffix) {
  if (std::abs(v) < step * 1e-9) return "0";
  v /= div, step /= div;
  int decimals = 0;
  while (decimals < 8 && std::abs(step * std::pow(10.0, decimals) -
                                  std::round(step * std::pow(10.0, decimals))) > 1e-6)
    ++decimals;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, v, suffix);
  return buf;
}

// Scientific notation with enough digits that ticks `step` apart differ.
std::string scientific_label(double v, double step, double big) {
  if (std::abs(v) < step * 1e-9) return "0";
  const int digits = std::clamp(
      static_cast<int>(std::floor(std::log10(big)) - std::floor(std::log10(step))), 0, 8);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*e", digits, v);
  return buf;
}

}  // namespace

AxisRange padded_range(double lo, double hi, double margin) {
  check(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "axis range must be finite");
  const double half_span = hi * 0.5 - lo * 0.5;
  const double scale = std::max(std::abs(lo), std::abs(hi));
  AxisRange r;
  if (half_span < 0.5e-9 * std::max(1.0, scale)) {  // one value: centre it
    const double half = std::max(0.05, scale * 0.05);
    const double mid = lo * 0.5 + hi * 0.5;
    r = {clamp_finite(mid - half), clamp_finite(mid + half)};
  } else {
    const double pad = 2 * margin * half_span;
    r = {clamp_finite(lo - pad), clamp_finite(hi + pad)};
  }
  return r;
}

double axis_fraction(double v, const AxisRange& r) {
  return (v * 0.5 - r.lo * 0.5) / (r.hi * 0.5 - r.lo * 0.5);
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  check(std::isfinite(lo) && std::isfinite(hi), "tick range must be finite");
  if (!(hi > lo) || max_ticks < 2) return {lo};
  const double half_span = hi * 0.5 - lo * 0.5;
  const auto limit = static_cast<size_t>(max_ticks);
  double step = nice_step_above(half_span / (max_ticks - 1) * 2);
  for (int tries = 0; tries < 64 && std::isfinite(step) && step > 0; ++tries) {
    std::vector<double> t = multiples(lo, hi, step, limit);
    if (t.empty()) {  // the step outgrew the range: one size smaller always hits it
      t = multiples(lo, hi, nice_step_below(step), limit);
      if (!t.empty() && t.size() <= limit) return t;
      break;
    }
    if (t.size() <= limit) return t;
    step = nice_step_above(step * 1.0001);
  }
  // Only in ranges near the largest doubles, where the nice steps overflow: the largest
  // finite power-of-ten multiples, else the middle.
  std::vector<double> t = multiples(lo, hi, 1e308, limit);
  if (t.empty() || t.size() > limit) t = {lo * 0.5 + hi * 0.5};
  return t;
}

std::vector<std::string> linear_labels(const std::vector<double>& v, bool allow_suffix) {
  if (v.empty()) return {};
  double big = 0;
  for (double t : v) big = std::max(big, std::abs(t));
  double step = v.size() > 1 ? std::abs(v[1] - v[0]) : big / 10;
  if (!(step > 0) || !std::isfinite(step)) step = big > 0 ? big / 10 : 1;
  double div = 1;
  const char* suffix = "";
  if (allow_suffix && big >= 1e7 && step >= 1e5) div = 1e6, suffix = "M";
  else if (allow_suffix && big >= 1e4 && step >= 100) div = 1e3, suffix = "k";
  const bool scientific = big / div >= 1e7 || step / div < 1e-5;
  std::vector<std::string> out;
  for (double t : v)
    out.push_back(scientific ? scientific_label(t, step, big) : fixed_label(t, step, div, suffix));
  return out;
}

std::vector<Tick> log_ticks(double lo, double hi) {
  check(std::isfinite(lo) && std::isfinite(hi) && lo > 0 && hi > lo,
        "logarithmic axis range must be positive and finite");
  std::vector<Tick> ticks;
  const int d0 = static_cast<int>(std::floor(std::log10(lo))) - 1;
  const int d1 = static_cast<int>(std::ceil(std::log10(hi)));
  const double decades = std::log10(hi) - std::log10(lo);
  for (int d = d0; d <= d1; ++d) {
    const double p = std::pow(10.0, d);
    const bool minor = decades < 12;  // beyond that the minor lines would be a grey wash
    for (int m = 1; m <= 9; ++m) {
      const double v = m * p;
      if (!std::isfinite(v) || v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
      const bool labelled = (m == 1 && (decades < 12 || d % 10 == 0)) ||
                            (decades < 2.5 && (m == 2 || m == 5)) || decades < 0.8;
      if (!labelled && !minor) continue;
      std::string label;
      if (labelled) {
        if (v >= 1e9 || v < 1e-3) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%de%d", m, d);
          label = buf;
        } else if (v >= 1e6) {
          label = fixed_label(v, p, 1e6, "M");
        } else if (v >= 1e3) {
          label = fixed_label(v, p, 1e3, "k");
        } else {
          label = fixed_label(v, p, 1, "");
        }
      }
      ticks.push_back({v, label});
    }
  }
  return ticks;
}

}  // namespace difftx
