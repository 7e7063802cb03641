#pragma once
// Drawing through cairo for the plots and heatmaps: a canvas that renders to a PNG (cairo image
// surface) or an SVG (cairo SVG surface), text in DejaVu Sans through cairo's toy text API, and
// an RGB image type for tests and pixel checks. Every cairo failure becomes difftx::Error.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef struct _cairo cairo_t;
typedef struct _cairo_surface cairo_surface_t;

namespace difftx {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// An 8-bit RGB image, rows top to bottom.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

enum class ImageFormat { kPng, kSvg };
// The format an output path asks for: ".svg" (any case) is SVG, every other name PNG.
ImageFormat image_format_for_path(const std::string& path);

// PNG file bytes of an image.
std::vector<uint8_t> encode_png(const Image& image);
// Decodes PNG bytes (any PNG cairo reads) into RGB; throws Error when they are not a PNG.
Image decode_png(const std::vector<uint8_t>& png);

// Text in `s` that cairo accepts: invalid UTF-8 bytes and control characters become '?'.
std::string printable_utf8(const std::string& s);

enum class Align { kLeft, kCentre, kRight };

// One drawing of width x height user units (pixels for PNG, points for SVG) on a white
// background. Coordinates: x to the right, y down, origin top-left.
class Canvas {
 public:
  Canvas(int width, int height, ImageFormat format);
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  int width() const { return width_; }
  int height() const { return height_; }
  cairo_t* cr() const { return cr_; }  // for paths that the helpers below do not cover

  void set_colour(Rgb c, double alpha = 1.0);
  void fill_rect(double x, double y, double w, double h, Rgb c, double alpha = 1.0);
  // Outline of width `line` drawn just outside [x, x + w) x [y, y + h).
  void frame_rect(double x, double y, double w, double h, Rgb c, double line = 1.0);
  // A polyline (round joins and caps); a single point draws a dot of the line's width.
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys, Rgb c,
                double width, double alpha = 1.0);
  void disc(double cx, double cy, double radius, Rgb c);
  // Confines later drawing to a rectangle until reset_clip().
  void clip(double x, double y, double w, double h);
  void reset_clip();

  // Text in DejaVu Sans of `size` user units (the em size). Width and the ascent of capitals.
  double text_width(const std::string& text, double size, bool bold = false) const;
  static double cap_height(double size) { return 0.73 * size; }
  // Text whose baseline starts (kLeft), is centred (kCentre) or ends (kRight) at x; y is the
  // baseline.
  void text(double x, double y, const std::string& text, double size, Rgb c,
            Align align = Align::kLeft, bool bold = false);
  // The same turned a quarter turn anticlockwise (reads upwards); (x, y) is on the baseline,
  // alignment along the text's own direction.
  void text_up(double x, double y, const std::string& text, double size, Rgb c,
               Align align = Align::kLeft, bool bold = false);
  // An RGB image of `cells_w` x `cells_h` pixels drawn scaled into the rectangle, without
  // smoothing (each cell a sharp square).
  void image(const Image& cells, double x, double y, double w, double h);

  // Finishes the drawing: the PNG or SVG file bytes. The canvas is unusable afterwards.
  std::vector<uint8_t> finish();
  // Finishes a PNG canvas into RGB pixels.
  Image finish_pixels();

 private:
  void select_font(double size, bool bold) const;
  void check_status() const;
  int width_, height_;
  ImageFormat format_;
  cairo_surface_t* surface_ = nullptr;
  cairo_t* cr_ = nullptr;
  std::vector<uint8_t> svg_bytes_;  // the SVG surface writes here as it goes
};

}  // namespace difftx
