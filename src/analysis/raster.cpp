#include "analysis/raster.h"

#include <algorithm>
#include <utility>

#include "analysis/bitmap_font.h"

namespace difftx::raster {

namespace {

void put(Image& img, int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

// Columns [first, last] of a glyph that hold ink; digits keep their full cell so numbers align.
std::pair<int, int> glyph_span(char ch, int space_advance) {
  if (ch == ' ') return {0, space_advance - 2};
  if (ch >= '0' && ch <= '9') return {0, font::kGlyphWidth - 1};
  const uint8_t* g = font::glyph(ch);
  int first = 0, last = font::kGlyphWidth - 1;
  while (first < last && g[first] == 0) ++first;
  while (last > first && g[last] == 0) --last;
  return {first, last};
}

// Calls plot(dx, dy) for every inked font pixel of text laid out left to right.
template <class Plot>
void layout(const std::string& text, int space_advance, Plot plot) {
  int pen = 0;
  for (char ch : text) {
    const auto [first, last] = glyph_span(ch, space_advance);
    const uint8_t* g = font::glyph(ch);
    for (int col = first; col <= last; ++col)
      for (int row = 0; row < font::kGlyphHeight; ++row)
        if (ch != ' ' && (g[col] >> row) & 1) plot(pen + col - first, row);
    pen += last - first + 2;
  }
}

}  // namespace

Image blank(int width, int height) {
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.assign(static_cast<size_t>(width) * height * 3, 255);
  return img;
}

void fill_rect(Image& img, int x, int y, int w, int h, Rgb c) {
  const int x0 = std::max(x, 0), y0 = std::max(y, 0);
  const int x1 = std::min(x + w, img.width), y1 = std::min(y + h, img.height);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) put(img, xx, yy, c);
}

void frame_rect(Image& img, int x, int y, int w, int h, Rgb c, int thickness) {
  const int t = thickness;
  fill_rect(img, x - t, y - t, w + 2 * t, t, c);
  fill_rect(img, x - t, y + h, w + 2 * t, t, c);
  fill_rect(img, x - t, y, t, h, c);
  fill_rect(img, x + w, y, t, h, c);
}

std::string ascii(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 32 && c < 127) out += static_cast<char>(c);
    else if (c >= 0xC0 || c < 0x80) out += '?';  // lead byte or control; skip continuations
  }
  return out;
}

int text_width(const std::string& text, int scale, int space_advance) {
  int w = 0;
  for (char ch : text) {
    const auto [first, last] = glyph_span(ch, space_advance);
    w += last - first + 2;
  }
  return std::max(0, w - 1) * scale;
}

void draw_text(Image& img, int x, int y, const std::string& text, Rgb c, int scale,
               int space_advance) {
  layout(text, space_advance, [&](int dx, int dy) { fill_rect(img, x + dx * scale, y + dy * scale, scale, scale, c); });
}

void draw_text_up(Image& img, int x, int y_bottom, const std::string& text, Rgb c, int scale,
                  int space_advance) {
  // A quarter turn counter-clockwise: (right, down) -> (up, right).
  layout(text, space_advance, [&](int dx, int dy) {
    fill_rect(img, x + dy * scale, y_bottom - (dx + 1) * scale, scale, scale, c);
  });
}

}  // namespace difftx::raster
