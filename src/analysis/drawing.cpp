#include "analysis/drawing.h"

#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace difftx {

namespace {

constexpr const char* kFontFamily = "DejaVu Sans";  // Debian fonts-dejavu-core

cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  auto* out = static_cast<std::vector<uint8_t>*>(closure);
  out->insert(out->end(), data, data + length);
  return CAIRO_STATUS_SUCCESS;
}

struct ReadCursor {
  const std::vector<uint8_t>* bytes;
  size_t pos = 0;
};

cairo_status_t read_bytes(void* closure, unsigned char* data, unsigned int length) {
  auto* c = static_cast<ReadCursor*>(closure);
  if (c->bytes->size() - c->pos < length) return CAIRO_STATUS_READ_ERROR;
  std::memcpy(data, c->bytes->data() + c->pos, length);
  c->pos += length;
  return CAIRO_STATUS_SUCCESS;
}

void surface_check(cairo_surface_t* s, const char* what) {
  const cairo_status_t st = cairo_surface_status(s);
  if (st != CAIRO_STATUS_SUCCESS)
    throw Error(std::string(what) + ": " + cairo_status_to_string(st));
}

// Cairo image surfaces hold premultiplied 0xAARRGGBB words in native byte order.
Image image_from_surface(cairo_surface_t* s) {
  cairo_surface_flush(s);
  Image img;
  img.width = cairo_image_surface_get_width(s);
  img.height = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  const cairo_format_t fmt = cairo_image_surface_get_format(s);
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      uint32_t px;
      std::memcpy(&px, data + static_cast<size_t>(y) * stride + 4 * static_cast<size_t>(x), 4);
      uint32_t a = fmt == CAIRO_FORMAT_ARGB32 ? px >> 24 : 255;
      uint8_t* o = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
      for (int ch = 0; ch < 3; ++ch) {
        const uint32_t v = (px >> (16 - 8 * ch)) & 0xFF;
        // Premultiplied colour composited over white, the background of every drawing.
        o[ch] = static_cast<uint8_t>(a == 255 ? v : std::min<uint32_t>(255, v + (255 - a)));
      }
    }
  return img;
}

}  // namespace

ImageFormat image_format_for_path(const std::string& path) {
  if (path.size() >= 4) {
    std::string ext = path.substr(path.size() - 4);
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".svg") return ImageFormat::kSvg;
  }
  return ImageFormat::kPng;
}

std::vector<uint8_t> encode_png(const Image& image) {
  check(image.width > 0 && image.height > 0 &&
            image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
        "encode_png: bad image size");
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, image.width, image.height);
  surface_check(s, "cannot make an image");
  unsigned char* data = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
      const uint32_t px = 0xFF000000u | (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2];
      std::memcpy(data + static_cast<size_t>(y) * stride + 4 * static_cast<size_t>(x), &px, 4);
    }
  cairo_surface_mark_dirty(s);
  std::vector<uint8_t> out;
  const cairo_status_t st = cairo_surface_write_to_png_stream(s, append_bytes, &out);
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS)
    throw Error(std::string("cannot encode the PNG image: ") + cairo_status_to_string(st));
  return out;
}

Image decode_png(const std::vector<uint8_t>& png) {
  ReadCursor cursor{&png};
  cairo_surface_t* s = cairo_image_surface_create_from_png_stream(read_bytes, &cursor);
  const cairo_status_t st = cairo_surface_status(s);
  if (st != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    throw Error(std::string("not a readable PNG image: ") + cairo_status_to_string(st));
  }
  Image img = image_from_surface(s);
  cairo_surface_destroy(s);
  return img;
}

std::string printable_utf8(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc >> 6) == 2;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok || cp < 0x20 || cp == 0x7F) {
      out += '?';
      i += ok ? len : 1;
      continue;
    }
    out.append(s, i, len);
    i += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

Canvas::Canvas(int width, int height, ImageFormat format)
    : width_(width), height_(height), format_(format) {
  check(width > 0 && height > 0, "drawing size must be positive");
  if (format == ImageFormat::kSvg) {
    surface_ = cairo_svg_surface_create_for_stream(append_bytes, &svg_bytes_, width, height);
    // Sized in pixels like the PNG (cairo's default unit is the point, 4/3 larger on screen).
    if (cairo_surface_status(surface_) == CAIRO_STATUS_SUCCESS)
      cairo_svg_surface_set_document_unit(surface_, CAIRO_SVG_UNIT_PX);
  } else {
    surface_ = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  }
  if (cairo_surface_status(surface_) != CAIRO_STATUS_SUCCESS) {
    const cairo_status_t st = cairo_surface_status(surface_);
    cairo_surface_destroy(surface_);
    throw Error(std::string("cannot make a drawing surface: ") + cairo_status_to_string(st));
  }
  cr_ = cairo_create(surface_);
  cairo_set_source_rgb(cr_, 1, 1, 1);
  cairo_paint(cr_);
  check_status();
}

Canvas::~Canvas() {
  if (cr_) cairo_destroy(cr_);
  if (surface_) cairo_surface_destroy(surface_);
}

void Canvas::check_status() const {
  const cairo_status_t st = cairo_status(cr_);
  if (st != CAIRO_STATUS_SUCCESS) throw Error(std::string("drawing failed: ") + cairo_status_to_string(st));
}

void Canvas::set_colour(Rgb c, double alpha) {
  cairo_set_source_rgba(cr_, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}

void Canvas::fill_rect(double x, double y, double w, double h, Rgb c, double alpha) {
  set_colour(c, alpha);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_fill(cr_);
}

void Canvas::frame_rect(double x, double y, double w, double h, Rgb c, double line) {
  set_colour(c);
  cairo_set_line_width(cr_, line);
  cairo_rectangle(cr_, x - line / 2, y - line / 2, w + line, h + line);
  cairo_stroke(cr_);
}

void Canvas::polyline(const std::vector<double>& xs, const std::vector<double>& ys, Rgb c,
                      double width, double alpha) {
  if (xs.empty()) return;
  set_colour(c, alpha);
  cairo_set_line_width(cr_, width);
  cairo_set_line_cap(cr_, CAIRO_LINE_CAP_ROUND);
  cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
  cairo_move_to(cr_, xs[0], ys[0]);
  if (xs.size() == 1) cairo_line_to(cr_, xs[0], ys[0]);  // a round cap makes the dot
  for (size_t k = 1; k < xs.size(); ++k) cairo_line_to(cr_, xs[k], ys[k]);
  cairo_stroke(cr_);
}

void Canvas::disc(double cx, double cy, double radius, Rgb c) {
  set_colour(c);
  cairo_new_sub_path(cr_);
  cairo_arc(cr_, cx, cy, radius, 0, 2 * M_PI);
  cairo_fill(cr_);
}

void Canvas::clip(double x, double y, double w, double h) {
  cairo_reset_clip(cr_);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_clip(cr_);
}

void Canvas::reset_clip() { cairo_reset_clip(cr_); }

void Canvas::select_font(double size, bool bold) const {
  cairo_select_font_face(cr_, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr_, size);
}

double Canvas::text_width(const std::string& text, double size, bool bold) const {
  select_font(size, bold);
  const std::string t = printable_utf8(text);
  cairo_text_extents_t e;
  cairo_text_extents(cr_, t.c_str(), &e);
  return e.x_advance;
}

void Canvas::text(double x, double y, const std::string& text, double size, Rgb c, Align align,
                  bool bold) {
  const double w = text_width(text, size, bold);
  const double x0 = align == Align::kLeft ? x : align == Align::kCentre ? x - w / 2 : x - w;
  set_colour(c);
  cairo_move_to(cr_, x0, y);
  cairo_show_text(cr_, printable_utf8(text).c_str());
  cairo_new_path(cr_);
  check_status();
}

void Canvas::text_up(double x, double y, const std::string& text, double size, Rgb c,
                     Align align, bool bold) {
  cairo_save(cr_);
  cairo_translate(cr_, x, y);
  cairo_rotate(cr_, -M_PI / 2);
  this->text(0, 0, text, size, c, align, bold);
  cairo_restore(cr_);
}

void Canvas::image(const Image& cells, double x, double y, double w, double h) {
  check(cells.width > 0 && cells.height > 0, "empty image");
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, cells.width, cells.height);
  surface_check(s, "cannot make an image");
  unsigned char* data = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  for (int yy = 0; yy < cells.height; ++yy)
    for (int xx = 0; xx < cells.width; ++xx) {
      const uint8_t* p = &cells.rgb[(static_cast<size_t>(yy) * cells.width + xx) * 3];
      const uint32_t px = 0xFF000000u | (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2];
      std::memcpy(data + static_cast<size_t>(yy) * stride + 4 * static_cast<size_t>(xx), &px, 4);
    }
  cairo_surface_mark_dirty(s);
  cairo_save(cr_);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_clip(cr_);
  cairo_translate(cr_, x, y);
  cairo_scale(cr_, w / cells.width, h / cells.height);
  cairo_set_source_surface(cr_, s, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr_), CAIRO_FILTER_NEAREST);
  cairo_paint(cr_);
  cairo_restore(cr_);
  cairo_surface_destroy(s);
  check_status();
}

std::vector<uint8_t> Canvas::finish() {
  check_status();
  std::vector<uint8_t> out;
  if (format_ == ImageFormat::kSvg) {
    cairo_destroy(cr_);
    cr_ = nullptr;
    cairo_surface_finish(surface_);
    surface_check(surface_, "cannot write the SVG image");
    out.swap(svg_bytes_);
  } else {
    const cairo_status_t st = cairo_surface_write_to_png_stream(surface_, append_bytes, &out);
    if (st != CAIRO_STATUS_SUCCESS)
      throw Error(std::string("cannot encode the PNG image: ") + cairo_status_to_string(st));
  }
  return out;
}

Image Canvas::finish_pixels() {
  check(format_ == ImageFormat::kPng, "finish_pixels needs a PNG canvas");
  check_status();
  return image_from_surface(surface_);
}

}  // namespace difftx
