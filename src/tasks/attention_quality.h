#pragma once
// Attention quality of a model on a set of token sequences, as the design deck defines it, from
// the effective maps (A1 - lambda A2 for differential heads) of analysis/attention_maps.h:
//   focus     mean over query rows of the row's largest |a_ij| (j <= i)
//   coverage  share of causal entries with |a_ij| > 0.1
//   entropy   analysis/attention_stats.h's (of the positive part, nats)
//   span      with a span of key tokens: attention on it and noise on the rest
//             (attention_stats.h's span statistics, the paper's Table 3)
// Each is the mean over layers, heads and sequences.
#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/attention_stats.h"
#include "model/params.h"

namespace difftx {

struct AttentionQuality {
  int64_t sequences = 0, tokens = 0;
  double focus = 0, coverage = 0, entropy = 0;
  bool has_span = false;
  double span_attention = 0, span_noise = 0;
};

// Row focus and coverage of one T x T map (row = query), over its causal entries.
void focus_and_coverage(const float* map, int64_t T, double threshold, double* focus,
                        double* coverage);

// sequences: token ids, each cut to max_len; span (when given) must fit every sequence (those
// it does not fit are skipped for the span statistics).
AttentionQuality attention_quality(const Model& model,
                                   const std::vector<std::vector<int32_t>>& sequences,
                                   int64_t max_len, const std::optional<Span>& span);

nlohmann::json to_json(const AttentionQuality& q);

}  // namespace difftx
