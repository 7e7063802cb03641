#pragma once
// Attention heatmaps as images: one T x T map (row = query, column = key) in a diverging colour
// map centred at 0 (blue negative, white zero, red positive; differential maps do go negative),
// masked cells above the diagonal hatched grey, a colour bar with values, and token labels on
// both axes when T is small enough to read them (kMaxLabelledTokens). Larger maps are averaged
// down to the drawing area. Drawn through cairo (analysis/drawing.h) with DejaVu Sans text.
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/drawing.h"

namespace difftx {

inline constexpr int64_t kMaxLabelledTokens = 48;

// v in [-1, 1] (clamped) -> ColorBrewer RdBu, reversed: -1 dark blue, 0 near white, +1 dark red.
Rgb diverging_colour(double v);

// A token's text as a short ASCII axis label: spaces shown as '_', newlines and tabs escaped
// (\n, \t), other characters outside ASCII as '?', cut to 8 characters ("..." marks a cut).
std::string token_label(const std::string& token_text);

// The largest |a| over the causal entries of `count` maps of T x T (at least 1e-12), the
// colour scale of a heatmap.
double causal_abs_max(const float* maps, int64_t count, int64_t T);

// One map. labels: one per token (already token_label'd or any ASCII), drawn only when
// labels.size() == T <= kMaxLabelledTokens; otherwise axes carry token indices.
Image render_heatmap(const float* map, int64_t T, const std::vector<std::string>& labels,
                     const std::string& title);

// All heads of a layer ([heads, T, T]) in a grid of small panels sharing one colour scale.
Image render_head_grid(const float* maps, int64_t heads, int64_t T, const std::string& title);

}  // namespace difftx
