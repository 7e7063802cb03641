#pragma once
// Minimal drawing on an RGB Image (analysis/plot.h) for the attention heatmaps: filled
// rectangles and text in the 5x8 bitmap font (analysis/bitmap_font.h), horizontal or turned a
// quarter turn to read upwards, at an integer scale.
#include <cstdint>
#include <string>

#include "analysis/plot.h"

namespace difftx::raster {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// A white image of the given size.
Image blank(int width, int height);
// Fills [x, x + w) x [y, y + h), clipped to the image.
void fill_rect(Image& img, int x, int y, int w, int h, Rgb c);
// Outline `thickness` pixels wide just outside [x, x + w) x [y, y + h).
void frame_rect(Image& img, int x, int y, int w, int h, Rgb c, int thickness = 1);

// Printable ASCII only: every other UTF-8 character becomes one '?'.
std::string ascii(const std::string& s);
// How far a ' ' advances the pen, in font pixels. The heatmaps use the default; the loss plots
// use a narrower space (3), so every text function takes it as its last parameter.
inline constexpr int kSpaceAdvance = 4;

// Width in pixels of text drawn at `scale` (proportional glyphs, one pixel of spacing).
int text_width(const std::string& text, int scale = 1, int space_advance = kSpaceAdvance);
inline int text_height(int scale = 1) { return 8 * scale; }
// Text with its top-left corner at (x, y).
void draw_text(Image& img, int x, int y, const std::string& text, Rgb c, int scale = 1,
               int space_advance = kSpaceAdvance);
// Text turned 90 degrees counter-clockwise, reading upwards from (x, y_bottom); the glyphs'
// tops face left and the text occupies columns [x, x + 8 * scale).
void draw_text_up(Image& img, int x, int y_bottom, const std::string& text, Rgb c,
                  int scale = 1, int space_advance = kSpaceAdvance);

}  // namespace difftx::raster
