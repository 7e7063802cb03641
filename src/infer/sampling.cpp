#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "core/error.h"

namespace difftx {

void validate(const SamplingOptions& o) {
  check_field(std::isfinite(o.temperature) && o.temperature >= 0, "temperature",
              " must be a finite number >= 0");
  check_field(o.top_k >= 0, "top_k", " must be >= 0 (0 turns it off)");
  check_field(std::isfinite(o.top_p) && o.top_p > 0 && o.top_p <= 1, "top_p",
              " must be in (0, 1]");
  check_field(std::isfinite(o.repetition_penalty) && o.repetition_penalty > 0,
              "repetition_penalty", " must be a finite number > 0");
}

int32_t sample_token(const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                     const SamplingOptions& o, Rng& rng) {
  std::vector<double> x(logits, logits + vocab);
  if (o.repetition_penalty != 1.0) {
    const std::unordered_set<int32_t> seen(history.begin(), history.end());
    for (int32_t id : seen)
      if (id >= 0 && id < vocab) x[id] = x[id] > 0 ? x[id] / o.repetition_penalty : x[id] * o.repetition_penalty;
  }
  if (o.temperature == 0) return static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin());
  if (o.top_k == 0 && o.top_p >= 1.0) {  // plain sampling: no need to sort the vocabulary
    const double mx = *std::max_element(x.begin(), x.end());
    double total = 0;
    for (double& v : x) total += (v = std::exp((v - mx) / o.temperature));
    double u = rng.uniform() * total;
    for (int64_t i = 0; i < vocab; ++i)
      if ((u -= x[i]) < 0) return static_cast<int32_t>(i);
    return static_cast<int32_t>(vocab - 1);
  }
  // Candidates by decreasing logit; top-k cuts the list.
  std::vector<int32_t> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = o.top_k > 0 ? std::min(o.top_k, vocab) : vocab;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  idx.resize(static_cast<size_t>(k));
  std::vector<double> p(idx.size());
  const double mx = x[idx[0]];
  double sum = 0;
  for (size_t i = 0; i < idx.size(); ++i) sum += (p[i] = std::exp((x[idx[i]] - mx) / o.temperature));
  // Nucleus: the smallest prefix whose probability reaches top_p.
  size_t keep = idx.size();
  if (o.top_p < 1.0) {
    double acc = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      acc += p[i] / sum;
      if (acc >= o.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  double u = rng.uniform() * total;
  for (size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace difftx
