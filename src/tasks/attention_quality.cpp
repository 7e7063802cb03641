#include "tasks/attention_quality.h"

#include <algorithm>
#include <cmath>

#include "analysis/attention_maps.h"

namespace difftx {

void focus_and_coverage(const float* map, int64_t T, double threshold, double* focus,
                        double* coverage) {
  double row_max_sum = 0;
  int64_t above = 0, entries = 0;
  for (int64_t i = 0; i < T; ++i) {
    double mx = 0;
    for (int64_t j = 0; j <= i; ++j) {
      const double a = std::fabs(static_cast<double>(map[i * T + j]));
      mx = std::max(mx, a);
      above += a > threshold;
    }
    entries += i + 1;
    row_max_sum += mx;
  }
  *focus = T > 0 ? row_max_sum / static_cast<double>(T) : 0.0;
  *coverage = entries > 0 ? static_cast<double>(above) / static_cast<double>(entries) : 0.0;
}

AttentionQuality attention_quality(const Model& model,
                                   const std::vector<std::vector<int32_t>>& sequences,
                                   int64_t max_len, const std::optional<Span>& span) {
  AttentionQuality q;
  double focus = 0, coverage = 0, entropy = 0, span_att = 0, span_noise = 0;
  int64_t maps = 0, entropy_maps = 0, span_maps = 0;
  for (const auto& seq : sequences) {
    const int64_t T = std::min<int64_t>(max_len, static_cast<int64_t>(seq.size()));
    if (T < 1) continue;
    const std::vector<int32_t> ids(seq.begin(), seq.begin() + T);
    const AttentionMaps m = compute_attention_maps(model, ids);
    ++q.sequences;
    q.tokens += T;
    const bool span_fits = span && span->end < T;
    for (size_t l = 0; l < m.layers.size(); ++l)
      for (int64_t h = 0; h < m.layers[l].heads; ++h) {
        const float* map = m.head(l, h);
        double f = 0, c = 0;
        focus_and_coverage(map, T, 0.1, &f, &c);
        focus += f;
        coverage += c;
        ++maps;
        const MapStats s = map_statistics(map, T, MapStatOptions{});
        if (std::isfinite(s.entropy)) {
          entropy += s.entropy;
          ++entropy_maps;
        }
        if (span_fits) {
          const SpanStats ss = span_statistics(map, T, *span);
          span_att += ss.attention;
          span_noise += ss.noise;
          ++span_maps;
        }
      }
  }
  if (maps > 0) {
    q.focus = focus / static_cast<double>(maps);
    q.coverage = coverage / static_cast<double>(maps);
  }
  q.entropy = entropy_maps > 0 ? entropy / static_cast<double>(entropy_maps) : NAN;
  if (span_maps > 0) {
    q.has_span = true;
    q.span_attention = span_att / static_cast<double>(span_maps);
    q.span_noise = span_noise / static_cast<double>(span_maps);
  }
  return q;
}

nlohmann::json to_json(const AttentionQuality& q) {
  nlohmann::json j{{"sequences", q.sequences}, {"tokens", q.tokens}, {"focus", q.focus},
                   {"coverage", q.coverage}};
  j["entropy"] = std::isfinite(q.entropy) ? nlohmann::json(q.entropy) : nlohmann::json();
  if (q.has_span) {
    j["span_attention"] = q.span_attention;
    j["span_noise"] = q.span_noise;
  }
  return j;
}

}  // namespace difftx
