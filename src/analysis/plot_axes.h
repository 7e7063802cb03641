#pragma once
// Axis arithmetic of the loss plots: ranges padded around the data, "nice" tick values and
// their labels. Everything stays finite for any finite data, however large (1e308 and -1e308
// included): spans are computed from halves so they never overflow.
#include <string>
#include <vector>

namespace difftx {

struct AxisRange {
  double lo = 0, hi = 1;  // finite, lo < hi
};

// [lo, hi] (finite, lo <= hi) widened by `margin` times its span on both sides; a single value
// (or a span negligible next to it) is centred in a window of +-5% of it (at least +-0.05).
// Ends that would overflow are clamped to the largest finite doubles.
AxisRange padded_range(double lo, double hi, double margin);

// Where v lies in the range: 0 at lo, 1 at hi (overflow-free).
double axis_fraction(double v, const AxisRange& r);

// "Nice" tick values (1, 2 or 5 times a power of ten) inside [lo, hi] with at most about
// max_ticks ticks. Never empty for finite lo <= hi: a range too narrow for any nice value gets
// its middle; lo == hi gets {lo}. Non-finite bounds throw Error.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks);

// Labels for evenly spaced ticks with the decimals their spacing needs. With allow_suffix,
// large values read 10k or 1.5M (one unit for the whole axis); values too large or too small
// for either read in scientific notation (1.5e+308).
std::vector<std::string> linear_labels(const std::vector<double>& ticks, bool allow_suffix);

struct Tick {
  double value;
  std::string label;  // empty: a minor grid line without a label
};

// Logarithmic-axis ticks for 0 < lo < hi: decades (1, 10, 100, 1k, ...), also 2 and 5 when the
// range spans few decades, the other multiples as unlabelled minor grid lines.
std::vector<Tick> log_ticks(double lo, double hi);

}  // namespace difftx
