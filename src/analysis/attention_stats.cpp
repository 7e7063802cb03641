#include "analysis/attention_stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>

#include "core/error.h"

namespace difftx {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Field-wise mean of a list of statistics; NaN entries (an entropy with no rows) are left out.
template <class S>
S mean_of(const std::vector<S>& items, const std::vector<double S::*>& fields) {
  S out{};
  for (const auto field : fields) {
    double sum = 0;
    int64_t n = 0;
    for (const S& s : items)
      if (!std::isnan(s.*field)) {
        sum += s.*field;
        ++n;
      }
    out.*field = n ? sum / static_cast<double>(n) : kNaN;
  }
  return out;
}

const std::vector<double MapStats::*> kMapFields = {
    &MapStats::sparsity, &MapStats::focus,   &MapStats::entropy,
    &MapStats::mean_abs, &MapStats::max,     &MapStats::negative_share};
const std::vector<double SpanStats::*> kSpanFields = {
    &SpanStats::attention, &SpanStats::noise, &SpanStats::attention_raw, &SpanStats::noise_raw};

MapStats mean_maps(const std::vector<MapStats>& v) { return mean_of(v, kMapFields); }
SpanStats mean_spans(const std::vector<SpanStats>& v) {
  SpanStats s = mean_of(v, kSpanFields);
  s.rows = v.empty() ? 0 : v.front().rows;
  return s;
}

int64_t parse_index(const std::string& s, const std::string& whole) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, v);
  check_field(!s.empty() && ec == std::errc() && p == end, "span", " \"", whole,
              "\" is not START:END with two whole token indices, e.g. 5:9");
  return v;
}

}  // namespace

MapStats map_statistics(const float* map, int64_t T, const MapStatOptions& o) {
  MapStats s;
  int64_t small = 0, focused = 0, entropy_rows = 0;
  double abs_sum = 0, neg_sum = 0, entropy_sum = 0;
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < T; ++i) {
    const float* row = map + i * T;
    double pos = 0;
    for (int64_t j = 0; j <= i; ++j) {
      const double a = row[j];
      small += std::abs(a) < o.threshold;
      focused += a > o.focus;
      abs_sum += std::abs(a);
      if (a < 0) neg_sum -= a;
      if (a > 0) pos += a;
      mx = std::max(mx, a);
    }
    if (pos <= 0) continue;
    double h = 0;  // entropy of the positive part, normalised to a distribution
    for (int64_t j = 0; j <= i; ++j)
      if (row[j] > 0) {
        const double p = row[j] / pos;
        h -= p * std::log(p);
      }
    entropy_sum += h;
    ++entropy_rows;
  }
  const double n = static_cast<double>(T * (T + 1) / 2);
  s.sparsity = static_cast<double>(small) / n;
  s.focus = static_cast<double>(focused) / n;
  s.entropy = entropy_rows ? entropy_sum / static_cast<double>(entropy_rows) : kNaN;
  s.mean_abs = abs_sum / n;
  s.max = mx;
  s.negative_share = abs_sum > 0 ? neg_sum / abs_sum : 0.0;
  return s;
}

Span parse_span(const std::string& text, int64_t T) {
  const size_t colon = text.find(':');
  check_field(colon != std::string::npos, "span", " \"", text,
              "\" is not START:END (token indices, END exclusive), e.g. 5:9");
  Span s{parse_index(text.substr(0, colon), text), parse_index(text.substr(colon + 1), text)};
  check_field(s.start >= 0 && s.start < s.end, "span", " ", text,
              ": START must be at least 0 and less than END");
  check_field(s.end < T, "span", " ", text, " is outside the text: it has ", T,
              " tokens and the span must end before the last one (END <= ", T - 1,
              "), so that some query tokens follow it");
  return s;
}

SpanStats span_statistics(const float* map, int64_t T, const Span& span) {
  check(span.start >= 0 && span.start < span.end && span.end < T && span.rows_from < T,
        "span outside the map");
  SpanStats s;
  const int64_t first = std::max(span.end, span.rows_from);
  s.rows = T - first;
  for (int64_t i = first; i < T; ++i) {
    const float* row = map + i * T;
    double on = 0, off = 0, total = 0;
    for (int64_t j = 0; j <= i; ++j) {
      const double a = row[j];
      total += std::abs(a);
      if (j >= span.start && j < span.end)
        on += a;
      else
        off += std::abs(a);
    }
    s.attention_raw += on;
    s.noise_raw += off;
    if (total > 0) {
      s.attention += on / total;
      s.noise += off / total;
    }
  }
  const double rows = static_cast<double>(s.rows);
  s.attention /= rows;
  s.noise /= rows;
  s.attention_raw /= rows;
  s.noise_raw /= rows;
  return s;
}

MagnitudeStats magnitude_statistics(std::vector<float> v) {
  for (float& x : v) x = std::abs(x);
  MagnitudeStats s;
  s.count = static_cast<int64_t>(v.size());
  const size_t top = std::min<size_t>(v.size(), 100);
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(top), v.end(),
                    std::greater<float>());
  const auto kth = [&](size_t k) { return k <= top ? static_cast<double>(v[k - 1]) : kNaN; };
  s.top1 = kth(1);
  s.top2 = kth(2);
  s.top3 = kth(3);
  s.top10 = kth(10);
  s.top100 = kth(100);
  s.largest.assign(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(top));
  if (v.empty()) {
    s.median = kNaN;
    return s;
  }
  // The median of the whole set; the order of v no longer matters.
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  double median = v[mid];
  if (v.size() % 2 == 0) {
    const float below = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
    median = 0.5 * (median + below);
  }
  s.median = median;
  return s;
}

AttentionStatistics statistics_from_forward(const Config& c, const ForwardRecord& rec,
                                            const StatisticsOptions& options) {
  const int64_t B = rec.geom.B, T = rec.geom.T;
  AttentionStatistics st;
  st.model_type = c.model_type;
  st.diff = !c.is_llama();
  st.sequences = B;
  st.T = T;
  st.options = options;
  if (options.span) check(options.span->end < T, "span outside the text");
  const size_t L = rec.layers.size();
  const int64_t H = c.effective_heads();
  // per_seq[l][h]: one entry per sequence, averaged below.
  std::vector<std::vector<std::vector<MapStats>>> per_seq(L, std::vector<std::vector<MapStats>>(H));
  std::vector<std::vector<std::vector<SpanStats>>> span_seq(L,
                                                            std::vector<std::vector<SpanStats>>(H));
  std::vector<double> lambda_sum(L, 0.0);  // V2: the mean lambda over tokens and sequences
  for (int64_t b = 0; b < B; ++b) {
    const AttentionMaps maps = extract_attention_maps(c, rec, b);
    for (size_t l = 0; l < L; ++l)
      lambda_sum[l] += maps.layers[l].lambda;
    for (size_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        per_seq[l][h].push_back(map_statistics(maps.head(l, h), T, options.maps));
        if (options.span) span_seq[l][h].push_back(span_statistics(maps.head(l, h), T,
                                                                   *options.span));
      }
  }
  std::vector<float> all_logits, all_hidden;
  std::vector<MapStats> all_heads;
  std::vector<SpanStats> all_spans;
  st.layers.resize(L);
  for (size_t l = 0; l < L; ++l) {
    LayerStatistics& ls = st.layers[l];
    ls.lambda = c.is_diff_v2() ? static_cast<float>(lambda_sum[l] / static_cast<double>(B))
                : c.is_diff()  ? rec.layers[l].lambda
                               : 0.f;
    for (int64_t h = 0; h < H; ++h) {
      ls.heads.push_back(mean_maps(per_seq[l][h]));
      if (options.span) ls.span_heads.push_back(mean_spans(span_seq[l][h]));
    }
    ls.mean = mean_maps(ls.heads);
    all_heads.insert(all_heads.end(), ls.heads.begin(), ls.heads.end());
    if (options.span) {
      ls.span_mean = mean_spans(ls.span_heads);
      all_spans.insert(all_spans.end(), ls.span_heads.begin(), ls.span_heads.end());
    }
    if (options.activations) {
      std::vector<float> logits, hidden;
      for (int64_t b = 0; b < B; ++b) {
        append_abs_attention_logits(c, rec, static_cast<int64_t>(l), b, logits);
        append_abs_hidden_states(c, rec, static_cast<int64_t>(l), b, hidden);
      }
      all_logits.insert(all_logits.end(), logits.begin(), logits.end());
      all_hidden.insert(all_hidden.end(), hidden.begin(), hidden.end());
      ls.logits = magnitude_statistics(std::move(logits));
      ls.hidden = magnitude_statistics(std::move(hidden));
    }
  }
  st.mean = mean_maps(all_heads);
  if (options.span) st.span_mean = mean_spans(all_spans);
  if (options.activations) {
    st.logits = magnitude_statistics(std::move(all_logits));
    st.hidden = magnitude_statistics(std::move(all_hidden));
  }
  return st;
}

AttentionStatistics attention_statistics(const Model& model, const int32_t* tokens, int64_t B,
                                         int64_t T, const StatisticsOptions& options) {
  if (options.span) check(options.span->end < T, "span outside the sequence");
  ForwardRecord rec(options.activations);
  run_reference_forward(model, tokens, B, T, rec);
  return statistics_from_forward(model.config, rec, options);
}

// ------------------------------------------------------------------------------------- JSON

namespace {

using json = nlohmann::ordered_json;

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json to_json(const MapStats& s) {
  return {{"sparsity", number(s.sparsity)},   {"focus", number(s.focus)},
          {"entropy", number(s.entropy)},     {"mean_abs", number(s.mean_abs)},
          {"max", number(s.max)},             {"negative_share", number(s.negative_share)}};
}
json to_json(const SpanStats& s) {
  return {{"rows", s.rows},
          {"attention", number(s.attention)},
          {"noise", number(s.noise)},
          {"attention_raw", number(s.attention_raw)},
          {"noise_raw", number(s.noise_raw)}};
}
json to_json(const MagnitudeStats& s) {
  return {{"count", s.count},         {"top1", number(s.top1)},   {"top2", number(s.top2)},
          {"top3", number(s.top3)},   {"top10", number(s.top10)}, {"top100", number(s.top100)},
          {"median", number(s.median)}};
}
json activations_json(const MagnitudeStats& logits, const MagnitudeStats& hidden) {
  return {{"attention_logits", to_json(logits)}, {"hidden_states", to_json(hidden)}};
}

}  // namespace

json statistics_to_json(const AttentionStatistics& st) {
  const bool span = st.options.span.has_value();
  const bool v2 = st.model_type == ModelType::kDiffLlamaV2;
  json j = {{"model_type", model_type_name(st.model_type)},
            {"map", v2 ? "A1 - lambda[t] * A2" : st.diff ? "A1 - lambda * A2" : "softmax"},
            {"sequences", st.sequences},
            {"tokens", st.T},
            {"threshold", st.options.maps.threshold},
            {"focus_threshold", st.options.maps.focus}};
  if (span) j["span"] = {{"start", st.options.span->start}, {"end", st.options.span->end}};
  json layers = json::array();
  for (size_t l = 0; l < st.layers.size(); ++l) {
    const LayerStatistics& ls = st.layers[l];
    json heads = json::array();
    for (size_t h = 0; h < ls.heads.size(); ++h) {
      json hj = to_json(ls.heads[h]);
      hj["head"] = h;
      if (span) hj["span"] = to_json(ls.span_heads[h]);
      heads.push_back(std::move(hj));
    }
    json lj = {{"layer", l}, {"heads", std::move(heads)}, {"mean", to_json(ls.mean)}};
    if (st.diff) lj[v2 ? "lambda_mean" : "lambda"] = number(ls.lambda);
    if (span) lj["span"] = to_json(ls.span_mean);
    if (st.options.activations) lj["activations"] = activations_json(ls.logits, ls.hidden);
    layers.push_back(std::move(lj));
  }
  j["layers"] = std::move(layers);
  j["mean"] = to_json(st.mean);
  if (span) j["span_mean"] = to_json(st.span_mean);
  if (st.options.activations) j["activations"] = activations_json(st.logits, st.hidden);
  return j;
}

}  // namespace difftx
