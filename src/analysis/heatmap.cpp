#include "analysis/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace difftx {

using raster::Rgb;

namespace {

constexpr Rgb kText{34, 34, 34};
constexpr Rgb kMuted{100, 100, 100};
constexpr Rgb kFrame{120, 120, 120};
constexpr int kPad = 16;
constexpr int kBarWidth = 14;
constexpr int kMapArea = 640;   // side of a single heatmap, in pixels (at most)
constexpr int kPanelArea = 224;  // side of one head in a grid

// Masked cells (key after query): a faint diagonal hatch, unlike any colour of the scale.
Rgb masked_colour(int x, int y) {
  return (x + y) % 6 == 0 ? Rgb{205, 205, 205} : Rgb{236, 236, 236};
}

// The side of the square a T x T map is drawn in: whole pixels per cell up to `area`, else
// `area` pixels each averaging a block of cells.
int map_side(int64_t T, int area) {
  if (T > area) return area;
  const int cell = std::min<int>(32, static_cast<int>(area / T));
  return cell * static_cast<int>(T);
}

// Draws the map into [x0, x0 + side)^2 with colours scaled by vmax.
void draw_map(Image& img, int x0, int y0, int side, const float* map, int64_t T, double vmax) {
  for (int py = 0; py < side; ++py) {
    const int64_t i0 = py * T / side, i1 = std::max(i0 + 1, (py + 1) * T / side);
    for (int px = 0; px < side; ++px) {
      const int64_t j0 = px * T / side, j1 = std::max(j0 + 1, (px + 1) * T / side);
      double sum = 0;
      int64_t n = 0;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < std::min(j1, i + 1); ++j) {
          sum += map[i * T + j];
          ++n;
        }
      const Rgb c = n ? diverging_colour(sum / static_cast<double>(n) / vmax)
                      : masked_colour(px, py);
      raster::fill_rect(img, x0 + px, y0 + py, 1, 1, c);
    }
  }
  raster::frame_rect(img, x0, y0, side, side, kFrame);
}

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", std::abs(v) < 1e-9 ? 0.0 : v);
  return buf;
}

// A vertical colour bar for [-vmax, vmax], top = +vmax, with ticks and values on its right.
void draw_colour_bar(Image& img, int x, int y, int h, double vmax) {
  for (int py = 0; py < h; ++py) {
    const double v = 1.0 - 2.0 * (py + 0.5) / h;
    raster::fill_rect(img, x, y + py, kBarWidth, 1, diverging_colour(v));
  }
  raster::frame_rect(img, x, y, kBarWidth, h, kFrame);
  // At least three ticks (-x, 0, x), even when vmax sits just below a round number.
  std::vector<double> ticks;
  for (int n = std::clamp(h / 40, 2, 7); n <= 12 && ticks.size() < 3; ++n)
    ticks = nice_ticks(-vmax, vmax, n);
  for (double t : ticks) {
    const int py = y + static_cast<int>(std::lround((vmax - t) / (2 * vmax) * (h - 1)));
    raster::fill_rect(img, x + kBarWidth, py, 4, 1, kFrame);
    raster::draw_text(img, x + kBarWidth + 7, py - 3, format_value(t), kText);
  }
}

int bar_block_width() { return 12 + kBarWidth + 8 + raster::text_width("-0.0005") + kPad; }

// Token indices along both axes when there are no labels.
void draw_index_ticks(Image& img, int x0, int y0, int side, int64_t T) {
  for (double t : nice_ticks(0, static_cast<double>(T - 1), 6)) {
    if (t != std::floor(t)) continue;
    const int off = static_cast<int>((t + 0.5) * side / static_cast<double>(T));
    const std::string s = std::to_string(static_cast<int64_t>(t));
    raster::fill_rect(img, x0 + off, y0 + side + 1, 1, 4, kFrame);
    raster::draw_text(img, x0 + off - raster::text_width(s) / 2, y0 + side + 7, s, kMuted);
    raster::fill_rect(img, x0 - 5, y0 + off, 4, 1, kFrame);
    raster::draw_text(img, x0 - 8 - raster::text_width(s), y0 + off - 3, s, kMuted);
  }
}

void draw_title(Image& img, const std::string& title) {
  const std::string t = raster::ascii(title);
  const int scale = raster::text_width(t, 2) + 2 * kPad <= img.width ? 2 : 1;
  raster::draw_text(img, kPad, kPad, t, kText, scale);
}

}  // namespace

Rgb diverging_colour(double v) {
  // ColorBrewer RdBu (11 classes), from -1 to +1.
  static constexpr Rgb kStops[11] = {{5, 48, 97},    {33, 102, 172}, {67, 147, 195},
                                     {146, 197, 222}, {209, 229, 240}, {247, 247, 247},
                                     {253, 219, 199}, {244, 165, 130}, {214, 96, 77},
                                     {178, 24, 43},  {103, 0, 31}};
  if (!std::isfinite(v)) v = 0;
  const double pos = (std::clamp(v, -1.0, 1.0) + 1.0) * 5.0;  // 0..10
  const int k = std::min(9, static_cast<int>(pos));
  const double f = pos - k;
  const auto mix = [f](uint8_t a, uint8_t b) {
    return static_cast<uint8_t>(std::lround(a + (b - a) * f));
  };
  const Rgb a = kStops[k], b = kStops[k + 1];
  return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}

std::string token_label(const std::string& text) {
  std::string s;
  for (unsigned char c : text) {
    if (c == ' ') s += '_';
    else if (c == '\n') s += "\\n";
    else if (c == '\t') s += "\\t";
    else if (c == '\r') s += "\\r";
    else s += static_cast<char>(c);
  }
  s = raster::ascii(s);
  if (s.empty()) s = "''";
  return s.size() > 8 ? s.substr(0, 6) + ".." : s;
}

double causal_abs_max(const float* maps, int64_t count, int64_t T) {
  double m = 1e-12;
  for (int64_t h = 0; h < count; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) m = std::max(m, std::abs(static_cast<double>(maps[(h * T + i) * T + j])));
  return m;
}

Image render_heatmap(const float* map, int64_t T, const std::vector<std::string>& labels,
                     const std::string& title) {
  const bool labelled = static_cast<int64_t>(labels.size()) == T && T <= kMaxLabelledTokens;
  int label_w = raster::text_width(std::to_string(T - 1));
  if (labelled)
    for (const auto& l : labels) label_w = std::max(label_w, raster::text_width(raster::ascii(l)));
  const int side = map_side(T, kMapArea);
  const int caption = 8 + 10;  // "query" / "key" captions
  const int left = kPad + caption + label_w + 10;
  const int top = kPad + 16 + 14;
  const int bottom = (labelled ? label_w + 10 : 8 + 10) + caption + kPad;
  const int width = std::max(left + side + bar_block_width(),
                             raster::text_width(raster::ascii(title)) + 2 * kPad);
  Image img = raster::blank(width, top + side + bottom);
  draw_title(img, title);
  draw_map(img, left, top, side, map, T, causal_abs_max(map, 1, T));
  draw_colour_bar(img, left + side + 12, top, side, causal_abs_max(map, 1, T));
  if (labelled) {
    const double cell = static_cast<double>(side) / static_cast<double>(T);
    for (int64_t t = 0; t < T; ++t) {
      const std::string l = raster::ascii(labels[static_cast<size_t>(t)]);
      const int mid = static_cast<int>((static_cast<double>(t) + 0.5) * cell);
      raster::draw_text(img, left - 6 - raster::text_width(l), top + mid - 4, l, kText);
      raster::draw_text_up(img, left + mid - 4, top + side + 6 + raster::text_width(l), l, kText);
    }
  } else {
    draw_index_ticks(img, left, top, side, T);
  }
  const int key_y = top + side + (labelled ? label_w + 10 : 18) + 4;
  raster::draw_text(img, left + side / 2 - raster::text_width("key") / 2, key_y, "key", kMuted);
  raster::draw_text_up(img, kPad, top + side / 2 + raster::text_width("query") / 2, "query", kMuted);
  return img;
}

Image render_head_grid(const float* maps, int64_t heads, int64_t T, const std::string& title) {
  const int cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(heads))));
  const int rows = static_cast<int>((heads + cols - 1) / cols);
  const int side = map_side(T, kPanelArea);
  const int gap = 18, head_caption = 14;
  const int top = kPad + 16 + 14;
  const int grid_w = cols * side + (cols - 1) * gap;
  const int grid_h = rows * (side + head_caption) + (rows - 1) * gap;
  const int width = std::max(kPad + grid_w + bar_block_width(),
                             raster::text_width(raster::ascii(title)) + 2 * kPad);
  Image img = raster::blank(width, top + grid_h + kPad);
  draw_title(img, title);
  const double vmax = causal_abs_max(maps, heads, T);  // one scale: heads are comparable
  for (int64_t h = 0; h < heads; ++h) {
    const int x = kPad + static_cast<int>(h % cols) * (side + gap);
    const int y = top + static_cast<int>(h / cols) * (side + head_caption + gap);
    raster::draw_text(img, x, y, "head " + std::to_string(h), kText);
    draw_map(img, x, y + head_caption, side, maps + h * T * T, T, vmax);
  }
  draw_colour_bar(img, kPad + grid_w + 12, top + head_caption,
                  std::min(grid_h - head_caption, std::max(side, 200)), vmax);
  return img;
}

}  // namespace difftx
