#include "analysis/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "analysis/plot_axes.h"

namespace difftx {

namespace {

constexpr Rgb kText{34, 34, 34};
constexpr Rgb kMuted{100, 100, 100};
constexpr Rgb kFrame{120, 120, 120};
constexpr double kPad = 16;
constexpr double kBarWidth = 14;
constexpr double kTitleSize = 15, kLabelSize = 11, kCaptionSize = 12;
constexpr int kMapArea = 640;    // side of a single heatmap, in pixels (at most)
constexpr int kPanelArea = 224;  // side of one head in a grid

// Masked cells (key after query): a faint diagonal hatch, unlike any colour of the scale.
Rgb masked_colour(int x, int y) {
  return (x + y) % 6 == 0 ? Rgb{205, 205, 205} : Rgb{236, 236, 236};
}

// Printable ASCII only: every other UTF-8 character becomes one '?'.
std::string ascii(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 32 && c < 127) out += static_cast<char>(c);
    else if (c >= 0xC0 || c < 0x80) out += '?';  // lead byte or control; skip continuations
  }
  return out;
}

// The side of the square a T x T map is drawn in: whole pixels per cell up to `area`, else
// `area` pixels each averaging a block of cells.
int map_side(int64_t T, int area) {
  if (T > area) return area;
  const int cell = std::min<int>(32, static_cast<int>(area / T));
  return cell * static_cast<int>(T);
}

// The map as side x side pixels, colours scaled by vmax.
Image map_pixels(int side, const float* map, int64_t T, double vmax) {
  Image img;
  img.width = img.height = side;
  img.rgb.resize(static_cast<size_t>(side) * side * 3);
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
      uint8_t* o = &img.rgb[(static_cast<size_t>(py) * side + px) * 3];
      o[0] = c.r, o[1] = c.g, o[2] = c.b;
    }
  }
  return img;
}

void draw_map(Canvas& cv, double x0, double y0, int side, const float* map, int64_t T,
              double vmax) {
  cv.image(map_pixels(side, map, T, vmax), x0, y0, side, side);
  cv.frame_rect(x0, y0, side, side, kFrame);
}

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", std::abs(v) < 1e-9 ? 0.0 : v);
  return buf;
}

// A vertical colour bar for [-vmax, vmax], top = +vmax, with ticks and values on its right.
void draw_colour_bar(Canvas& cv, double x, double y, int h, double vmax) {
  Image bar;
  bar.width = 1, bar.height = h;
  for (int py = 0; py < h; ++py) {
    const Rgb c = diverging_colour(1.0 - 2.0 * (py + 0.5) / h);
    bar.rgb.insert(bar.rgb.end(), {c.r, c.g, c.b});
  }
  cv.image(bar, x, y, kBarWidth, h);
  cv.frame_rect(x, y, kBarWidth, h, kFrame);
  // At least three ticks (-x, 0, x), even when vmax sits just below a round number.
  std::vector<double> ticks;
  for (int n = std::clamp(h / 40, 2, 7); n <= 12 && ticks.size() < 3; ++n)
    ticks = nice_ticks(-vmax, vmax, n);
  for (double t : ticks) {
    const double py = y + std::round((vmax - t) / (2 * vmax) * (h - 1)) + 0.5;
    cv.fill_rect(x + kBarWidth, py - 0.5, 4, 1, kFrame);
    cv.text(x + kBarWidth + 7, py + Canvas::cap_height(kLabelSize) / 2, format_value(t),
            kLabelSize, kText);
  }
}

double bar_block_width(const Canvas& cv) {
  return 12 + kBarWidth + 8 + cv.text_width("-0.0005", kLabelSize) + kPad;
}

// Token indices along both axes when there are no labels.
void draw_index_ticks(Canvas& cv, double x0, double y0, int side, int64_t T) {
  for (double t : nice_ticks(0, static_cast<double>(T - 1), 6)) {
    if (t != std::floor(t)) continue;
    const double off = std::round((t + 0.5) * side / static_cast<double>(T)) + 0.5;
    const std::string s = std::to_string(static_cast<int64_t>(t));
    cv.fill_rect(x0 + off - 0.5, y0 + side + 1, 1, 4, kFrame);
    cv.text(x0 + off, y0 + side + 7 + Canvas::cap_height(kLabelSize), s, kLabelSize, kMuted,
            Align::kCentre);
    cv.fill_rect(x0 - 5, y0 + off - 0.5, 4, 1, kFrame);
    cv.text(x0 - 8, y0 + off + Canvas::cap_height(kLabelSize) / 2, s, kLabelSize, kMuted,
            Align::kRight);
  }
}

// A canvas just to measure text before the real one's size is known.
const Canvas& measuring_canvas() {
  thread_local Canvas cv(1, 1, ImageFormat::kPng);
  return cv;
}

constexpr double kTop = kPad + kTitleSize * 1.3 + 12;

void draw_title(Canvas& cv, const std::string& title) {
  cv.text(kPad, kPad + Canvas::cap_height(kTitleSize), title, kTitleSize, kText, Align::kLeft,
          true);
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
  s = ascii(s);
  if (s.empty()) s = "''";
  return s.size() > 8 ? s.substr(0, 6) + ".." : s;
}

double causal_abs_max(const float* maps, int64_t count, int64_t T) {
  double m = 1e-12;
  for (int64_t h = 0; h < count; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j)
        m = std::max(m, std::abs(static_cast<double>(maps[(h * T + i) * T + j])));
  return m;
}

Image render_heatmap(const float* map, int64_t T, const std::vector<std::string>& labels,
                     const std::string& title) {
  const Canvas& m = measuring_canvas();
  const bool labelled = static_cast<int64_t>(labels.size()) == T && T <= kMaxLabelledTokens;
  double label_w = m.text_width(std::to_string(T - 1), kLabelSize);
  if (labelled)
    for (const auto& l : labels) label_w = std::max(label_w, m.text_width(ascii(l), kLabelSize));
  label_w = std::ceil(label_w);
  const int side = map_side(T, kMapArea);
  const double caption = kCaptionSize + 8;  // "query" / "key" captions
  const double left = std::round(kPad + caption + label_w + 10);
  const double bottom = (labelled ? label_w + 12 : 8 + 14) + caption + kPad;
  const int width = static_cast<int>(std::ceil(
      std::max(left + side + bar_block_width(m), m.text_width(title, kTitleSize, true) + 2 * kPad)));
  Canvas cv(width, static_cast<int>(std::ceil(kTop + side + bottom)), ImageFormat::kPng);
  draw_title(cv, title);
  const double vmax = causal_abs_max(map, 1, T);
  draw_map(cv, left, kTop, side, map, T, vmax);
  draw_colour_bar(cv, left + side + 12, kTop, side, vmax);
  if (labelled) {
    const double cell = static_cast<double>(side) / static_cast<double>(T);
    const double mid_offset = Canvas::cap_height(kLabelSize) / 2;
    for (int64_t t = 0; t < T; ++t) {
      const std::string l = ascii(labels[static_cast<size_t>(t)]);
      const double mid = (static_cast<double>(t) + 0.5) * cell;
      cv.text(left - 6, kTop + mid + mid_offset, l, kLabelSize, kText, Align::kRight);
      cv.text_up(left + mid + mid_offset, kTop + side + 6, l, kLabelSize, kText, Align::kRight);
    }
  } else {
    draw_index_ticks(cv, left, kTop, side, T);
  }
  const double key_base = kTop + side + (labelled ? label_w + 12 : 22) + kCaptionSize;
  cv.text(left + side / 2.0, key_base, "key", kCaptionSize, kMuted, Align::kCentre);
  cv.text_up(kPad + Canvas::cap_height(kCaptionSize), kTop + side / 2.0, "query", kCaptionSize,
             kMuted, Align::kCentre);
  return cv.finish_pixels();
}

Image render_head_grid(const float* maps, int64_t heads, int64_t T, const std::string& title) {
  const Canvas& m = measuring_canvas();
  const int cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(heads))));
  const int rows = static_cast<int>((heads + cols - 1) / cols);
  const int side = map_side(T, kPanelArea);
  const int gap = 18, head_caption = 16;
  const int grid_w = cols * side + (cols - 1) * gap;
  const int grid_h = rows * (side + head_caption) + (rows - 1) * gap;
  const int width = static_cast<int>(std::ceil(std::max(
      kPad + grid_w + bar_block_width(m), m.text_width(title, kTitleSize, true) + 2 * kPad)));
  Canvas cv(width, static_cast<int>(kTop + grid_h + kPad), ImageFormat::kPng);
  draw_title(cv, title);
  const double vmax = causal_abs_max(maps, heads, T);  // one scale: heads are comparable
  for (int64_t h = 0; h < heads; ++h) {
    const double x = kPad + static_cast<double>(h % cols) * (side + gap);
    const double y = kTop + static_cast<double>(h / cols) * (side + head_caption + gap);
    cv.text(x, y + Canvas::cap_height(kLabelSize) + 1, "head " + std::to_string(h), kLabelSize,
            kText);
    draw_map(cv, x, y + head_caption, side, maps + h * T * T, T, vmax);
  }
  draw_colour_bar(cv, kPad + grid_w + 12, kTop + head_caption,
                  std::min(grid_h - head_caption, std::max(side, 200)), vmax);
  return cv.finish_pixels();
}

}  // namespace difftx
