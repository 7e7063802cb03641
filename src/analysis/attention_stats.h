#pragma once
// Statistics of attention maps (docs/attention.md defines each one precisely):
//
//  - per map: sparsity, focus, entropy of the positive part, mean |a|, max, negative share;
//  - with a span of tokens: the attention allocated to the span and the attention noise (the
//    rest of the context), the quantities of the paper's Table 3;
//  - activation magnitudes: top-1, 2, 3, 10, 100 and the median of |attention logits| and of
//    |hidden states|, the paper's Table 5.
//
// Only the causal entries of a map (key j <= query i) count. attention_statistics() computes
// everything from a model and a batch, so that a training loop can log it every N steps.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/attention_maps.h"

namespace difftx {

struct MapStatOptions {
  double threshold = 0.1;  // sparsity counts |a| < threshold
  double focus = 0.5;      // focus counts a > focus
};

struct MapStats {
  double sparsity = 0;        // share of causal entries with |a| < threshold
  double focus = 0;           // share of causal entries with a > focus
  double entropy = 0;         // mean over rows of the entropy (nats) of max(a, 0) normalised
                              // to sum 1; rows with no positive entry are skipped (NaN if all)
  double mean_abs = 0;        // mean |a|
  double max = 0;             // largest a
  double negative_share = 0;  // sum of |a| over negative entries / sum of |a| (0 if all zero)
};

// Statistics of one T x T map (row = query), over its T (T + 1) / 2 causal entries.
MapStats map_statistics(const float* map, int64_t T, const MapStatOptions& options);

// Key tokens [start, end); the query rows are end .. T-1.
struct Span {
  int64_t start = 0, end = 0;
  int64_t rows_from = 0;  // the first query row averaged over is max(end, rows_from)
};
// Parses "START:END" and checks 0 <= START < END < T (at least one query row after the span).
// Throws Error naming the problem.
Span parse_span(const std::string& text, int64_t T);

struct SpanStats {
  int64_t rows = 0;          // query rows averaged over (T - max(end, rows_from))
  double attention = 0;      // mean over rows of  sum_{j in span} a_ij / sum_{j<=i} |a_ij|
  double noise = 0;          // mean over rows of  sum_{j<=i, j not in span} |a_ij| / sum_{j<=i} |a_ij|
  double attention_raw = 0;  // the same two without the division (for softmax maps, equal)
  double noise_raw = 0;
};
SpanStats span_statistics(const float* map, int64_t T, const Span& span);

// Largest values and median of a set of magnitudes. top[k] is the k-th largest value; NaN when
// there are fewer than k values (and every field is NaN when there are none).
struct MagnitudeStats {
  int64_t count = 0;
  double top1 = 0, top2 = 0, top3 = 0, top10 = 0, top100 = 0, median = 0;
  std::vector<float> largest;  // the (up to) 100 largest, descending: for pooling several sets
};
MagnitudeStats magnitude_statistics(std::vector<float> magnitudes);

struct StatisticsOptions {
  MapStatOptions maps;
  std::optional<Span> span;  // checked against T
  bool activations = false;  // attention-logit and hidden-state magnitudes (Table 5)
};

struct LayerStatistics {
  float lambda = 0.f;                  // differential only (V2: mean over tokens and heads)
  std::vector<MapStats> heads;         // per head, averaged over the batch's sequences
  std::vector<SpanStats> span_heads;   // per head, when a span is given
  MapStats mean;                       // average over heads
  SpanStats span_mean;                 // average over heads, when a span is given
  MagnitudeStats logits, hidden;       // when activations are asked for
};

struct AttentionStatistics {
  ModelType model_type = ModelType::kLlama;
  bool diff = false;  // two maps per head (V1 or V2)
  int64_t sequences = 0, T = 0;
  StatisticsOptions options;
  std::vector<LayerStatistics> layers;
  MapStats mean;        // average over layers and heads
  SpanStats span_mean;  // likewise, when a span is given
  MagnitudeStats logits, hidden;  // over the whole model, when activations are asked for
};

// Statistics of the effective maps of every sequence of a reference forward pass
// (run_reference_forward). Map and span statistics are averaged over sequences; magnitudes
// pool every sequence.
AttentionStatistics statistics_from_forward(const Config& config, const ForwardRecord& record,
                                            const StatisticsOptions& options);

// For training-time monitoring: runs a reference forward over B sequences of T tokens
// (tokens [B, T], row-major) and returns statistics_from_forward. Costs one forward pass with
// T x T maps per layer: use a small batch.
AttentionStatistics attention_statistics(const Model& model, const int32_t* tokens, int64_t B,
                                         int64_t T, const StatisticsOptions& options = {});

// The full statistics as JSON (the layout of stats.json; NaN becomes null).
nlohmann::ordered_json statistics_to_json(const AttentionStatistics& stats);

}  // namespace difftx
