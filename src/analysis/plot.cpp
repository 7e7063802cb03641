#include "analysis/plot.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/bitmap_font.h"
#include "analysis/raster.h"
#include "core/error.h"
#include "core/files.h"

namespace difftx {

// ---------------------------------------------------------------------------------------------
// metrics.jsonl

namespace {

std::string snippet(const std::string& line) {
  return line.size() <= 60 ? line : line.substr(0, 57) + "...";
}

// Reads a loss-like key into out; false when it is absent, null or not finite (a skipped step).
bool read_value(const nlohmann::json& j, const char* key, double& out, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_number()) throw Error(where + ": \"" + key + "\" is not a number");
  out = it->get<double>();
  return std::isfinite(out);  // NaN or infinite values (skipped steps) are dropped
}

std::string run_name(const std::string& run_dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(run_dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "runs/a/" -> "runs/a"
  std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") {
    std::error_code ec;
    const fs::path abs = fs::weakly_canonical(fs::absolute(run_dir), ec);
    if (!ec && abs.has_filename()) name = abs.filename().string();
  }
  return name.empty() ? run_dir : name;
}

}  // namespace

RunMetrics parse_metrics(const std::string& text, const std::string& source) {
  RunMetrics run;
  std::istringstream in(text);
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + " line " + std::to_string(line_no);
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error(where + ": not valid JSON: " + snippet(line));
    if (!j.is_object()) throw Error(where + ": not a JSON object: " + snippet(line));
    double loss = 0, val_loss = 0;
    const bool has_loss = read_value(j, "loss", loss, where);
    const bool has_val = read_value(j, "val_loss", val_loss, where);
    const bool mentions_loss = j.contains("loss") || j.contains("val_loss");
    if (!mentions_loss) continue;  // some other kind of record
    const auto step = j.find("step");
    if (step == j.end() || !step->is_number() || !std::isfinite(step->get<double>()))
      throw Error(where + ": missing or non-numeric \"step\"");
    const double s = step->get<double>();
    if (has_loss) run.train.push_back({s, loss});
    if (has_val) run.val.push_back({s, val_loss});
  }
  const auto by_step = [](const MetricPoint& a, const MetricPoint& b) { return a.step < b.step; };
  std::stable_sort(run.train.begin(), run.train.end(), by_step);
  std::stable_sort(run.val.begin(), run.val.end(), by_step);
  return run;
}

RunMetrics read_metrics(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(run_dir, ec)) throw Error("run directory " + run_dir + " does not exist");
  if (!fs::is_directory(run_dir, ec)) throw Error(run_dir + " is not a directory");
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  if (!fs::is_regular_file(path, ec))
    throw Error(run_dir + " has no metrics.jsonl (not a training run directory?)");
  RunMetrics run = parse_metrics(read_file_text(path), path);
  run.name = run_name(run_dir);
  return run;
}

PlotMetric parse_plot_metric(const std::string& name) {
  if (name == "loss") return PlotMetric::kLoss;
  if (name == "val_loss") return PlotMetric::kValLoss;
  if (name == "both") return PlotMetric::kBoth;
  throw Error("unknown metric \"" + name + "\" (expected loss, val_loss or both)");
}

// ---------------------------------------------------------------------------------------------
// Numeric helpers

std::array<uint8_t, 3> run_colour(size_t i) {
  // Tableau 10: distinct hues that stay distinguishable for most colour-blind readers.
  static constexpr uint8_t kPalette[10][3] = {
      {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
      {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  const auto& c = kPalette[i % 10];
  return {c[0], c[1], c[2]};
}

std::vector<double> moving_average(const std::vector<double>& values, int window) {
  if (window <= 1 || values.size() < 3) return values;
  const size_t n = values.size();
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + values[i];
  const size_t half = static_cast<size_t>(window) / 2;
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t h = std::min({half, i, n - 1 - i});
    out[i] = (prefix[i + h + 1] - prefix[i - h]) / static_cast<double>(2 * h + 1);
  }
  return out;
}

int auto_smooth_window(size_t n) {
  return static_cast<int>(std::max<size_t>(1, (n + 15) / 30));
}

namespace {

// The nice tick step (1, 2 or 5 times a power of ten) nearest above raw.
double nice_step(double raw) {
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  if (!(hi > lo) || max_ticks < 2) return {lo};
  double step = nice_step((hi - lo) / (max_ticks - 1));
  for (;;) {
    std::vector<double> t;
    const double first = std::ceil(lo / step - 1e-9) * step;
    for (double v = first; v <= hi + step * 1e-9; v = first + static_cast<double>(t.size()) * step)
      t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    if (static_cast<int>(t.size()) <= max_ticks) return t;
    step = nice_step(step * 1.0001);
  }
}

// ---------------------------------------------------------------------------------------------
// Drawing

namespace {

constexpr int kSS = 2;  // supersampling factor: draw at kSS x the size, then average down

using raster::Rgb;
Rgb rgb(std::array<uint8_t, 3> c) { return {c[0], c[1], c[2]}; }
constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kText{34, 34, 34};
constexpr Rgb kMuted{110, 110, 110};
constexpr Rgb kGrid{226, 226, 226};
constexpr Rgb kMinorGrid{242, 242, 242};
constexpr Rgb kFrame{85, 85, 85};
constexpr Rgb kLegendBorder{190, 190, 190};

struct Rect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // half-open
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
};

// The plots' text is set with a narrower space than raster's default.
constexpr int kSpaceAdvance = 3;

// Width in canvas pixels of text drawn at `scale`.
int text_width(const std::string& s, int scale) {
  return raster::text_width(s, scale, kSpaceAdvance);
}

class Canvas {
 public:
  Canvas(int w, int h)
      : w_(w), h_(h), img_(raster::blank(w, h)), cov_(static_cast<size_t>(w) * h, 0.0f) {
    clip_ = {0, 0, w, h};
  }
  int width() const { return w_; }
  int height() const { return h_; }
  const std::vector<uint8_t>& pixels() const { return img_.rgb; }
  void set_clip(Rect r) { clip_ = r; }
  void reset_clip() { clip_ = {0, 0, w_, h_}; }

  void blend(int x, int y, Rgb c, float a) {
    if (x < clip_.x0 || y < clip_.y0 || x >= clip_.x1 || y >= clip_.y1 || a <= 0) return;
    uint8_t* p = &img_.rgb[(static_cast<size_t>(y) * w_ + x) * 3];
    if (a >= 1) {
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
      return;
    }
    p[0] = static_cast<uint8_t>(std::lround(p[0] + (c.r - p[0]) * a));
    p[1] = static_cast<uint8_t>(std::lround(p[1] + (c.g - p[1]) * a));
    p[2] = static_cast<uint8_t>(std::lround(p[2] + (c.b - p[2]) * a));
  }

  // Opaque rectangles, frames and text ignore the clip, which only confines the curves.
  void fill_rect(Rect r, Rgb c) { raster::fill_rect(img_, r.x0, r.y0, r.width(), r.height(), c); }
  // Blends c over r with opacity a, within the clip.
  void shade_rect(Rect r, Rgb c, float a) {
    for (int y = r.y0; y < r.y1; ++y)
      for (int x = r.x0; x < r.x1; ++x) blend(x, y, c, a);
  }
  // Outline t pixels wide just outside r.
  void frame_rect(Rect r, int t, Rgb c) {
    raster::frame_rect(img_, r.x0, r.y0, r.width(), r.height(), c, t);
  }

  // Shapes are accumulated as coverage (the maximum over all shapes of one stroke, so joints
  // are not blended twice), then composited once with paint().
  void cover_segment(double ax, double ay, double bx, double by, double half_width) {
    const double r = half_width + 0.5;
    const int x0 = std::max(clip_.x0, static_cast<int>(std::floor(std::min(ax, bx) - r)));
    const int x1 = std::min(clip_.x1 - 1, static_cast<int>(std::ceil(std::max(ax, bx) + r)));
    const int y0 = std::max(clip_.y0, static_cast<int>(std::floor(std::min(ay, by) - r)));
    const int y1 = std::min(clip_.y1 - 1, static_cast<int>(std::ceil(std::max(ay, by) + r)));
    if (x0 > x1 || y0 > y1) return;
    grow_dirty(x0, y0, x1, y1);
    const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int y = y0; y <= y1; ++y) {
      const double py = y + 0.5;
      for (int x = x0; x <= x1; ++x) {
        const double pxx = x + 0.5;
        double t = len2 > 0 ? ((pxx - ax) * dx + (py - ay) * dy) / len2 : 0.0;
        t = std::clamp(t, 0.0, 1.0);
        const double ex = pxx - (ax + t * dx), ey = py - (ay + t * dy);
        const double cov = std::clamp(r - std::sqrt(ex * ex + ey * ey), 0.0, 1.0);
        float& c = cov_[static_cast<size_t>(y) * w_ + x];
        c = std::max(c, static_cast<float>(cov));
      }
    }
  }
  void cover_disc(double cx, double cy, double radius) {
    cover_segment(cx, cy, cx, cy, radius);
  }
  void paint(Rgb c, float opacity = 1) {
    if (dirty_.x0 > dirty_.x1) return;
    for (int y = dirty_.y0; y <= dirty_.y1; ++y)
      for (int x = dirty_.x0; x <= dirty_.x1; ++x) {
        float& cov = cov_[static_cast<size_t>(y) * w_ + x];
        if (cov > 0) blend(x, y, c, cov * opacity);
        cov = 0;
      }
    dirty_ = {w_, h_, -1, -1};
  }

  // Text with its top-left corner at (x, y); each font pixel is scale x scale canvas pixels.
  void text(int x, int y, const std::string& s, int scale, Rgb c) {
    x -= x % kSS, y -= y % kSS;  // whole output pixels keep the glyphs crisp
    raster::draw_text(img_, x, y, s, c, scale, kSpaceAdvance);
  }
  // Text rotated a quarter turn anticlockwise (read bottom to top); (x, y) is the bottom-left
  // corner of the rotated text's box: the start of the baseline side.
  void text_up(int x, int y, const std::string& s, int scale, Rgb c) {
    x -= x % kSS, y -= y % kSS;
    raster::draw_text_up(img_, x, y, s, c, scale, kSpaceAdvance);
  }

 private:
  void grow_dirty(int x0, int y0, int x1, int y1) {
    dirty_.x0 = std::min(dirty_.x0, x0), dirty_.y0 = std::min(dirty_.y0, y0);
    dirty_.x1 = std::max(dirty_.x1, x1), dirty_.y1 = std::max(dirty_.y1, y1);
  }
  int w_, h_;
  Image img_;
  std::vector<float> cov_;
  Rect clip_;
  Rect dirty_{w_, h_, -1, -1};  // inclusive bounds of nonzero coverage
};

// Formats a tick value with the decimals that `step` needs, dividing by `div` (1, 1e3, 1e6) and
// appending its suffix.
std::string format_number(double v, double step, double div, const char* suffix) {
  if (std::abs(v) < step * 1e-9) return "0";
  v /= div, step /= div;
  int decimals = 0;
  while (decimals < 8 && std::abs(step * std::pow(10.0, decimals) -
                                  std::round(step * std::pow(10.0, decimals))) > 1e-6)
    ++decimals;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, v, suffix);
  return buf;
}

// Labels for evenly spaced ticks. With allow_suffix, large step counts read 10k or 1.5M, the
// same unit for every label of the axis.
std::vector<std::string> linear_labels(const std::vector<double>& v, bool allow_suffix) {
  const double step = v.size() > 1 ? v[1] - v[0] : std::max(1e-9, std::abs(v[0]) / 10);
  double big = 0;
  for (double t : v) big = std::max(big, std::abs(t));
  double div = 1;
  const char* suffix = "";
  if (allow_suffix && big >= 1e7 && step >= 1e5) div = 1e6, suffix = "M";
  else if (allow_suffix && big >= 1e4 && step >= 100) div = 1e3, suffix = "k";
  std::vector<std::string> out;
  for (double t : v) out.push_back(format_number(t, step, div, suffix));
  return out;
}

struct Tick {
  double value;
  std::string label;  // empty: a minor grid line without a label
};

// Log-axis ticks: decades (1, 10, 100, 1k, ...), also 2 and 5 when the range spans few
// decades, and the other multiples as unlabelled minor grid lines.
std::vector<Tick> log_ticks(double lo, double hi) {
  std::vector<Tick> ticks;
  const int d0 = static_cast<int>(std::floor(std::log10(lo))) - 1;
  const int d1 = static_cast<int>(std::ceil(std::log10(hi)));
  const double decades = std::log10(hi / lo);
  for (int d = d0; d <= d1; ++d) {
    const double p = std::pow(10.0, d);
    for (int m = 1; m <= 9; ++m) {
      const double v = m * p;
      if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
      const bool labelled = m == 1 || (decades < 2.5 && (m == 2 || m == 5)) || decades < 0.8;
      std::string label;
      if (labelled) {
        if (v >= 1e6) label = format_number(v, p, 1e6, "M");
        else if (v >= 1e3) label = format_number(v, p, 1e3, "k");
        else label = format_number(v, p, 1, "");
      }
      ticks.push_back({v, label});
    }
  }
  return ticks;
}

struct Curve {
  std::vector<double> x, y;  // data coordinates
};

struct LegendEntry {
  std::string label;
  Rgb colour;
  bool val;  // thick line with a marker; else the thin training line
};

}  // namespace

Image render_loss_curves(const std::vector<RunMetrics>& runs, const PlotOptions& options) {
  check(options.width >= 300 && options.height >= 200 && options.width <= 8000 &&
            options.height <= 8000,
        "plot size must be between 300x200 and 8000x8000 pixels");
  const bool want_train = options.metric != PlotMetric::kValLoss;
  const bool want_val = options.metric != PlotMetric::kLoss;

  // Series in data coordinates. One smoothing window for all runs, so they compare fairly.
  size_t max_train = 0;
  for (const auto& r : runs) max_train = std::max(max_train, r.train.size());
  const int window = options.smooth ? std::max(1, *options.smooth) : auto_smooth_window(max_train);
  std::vector<Curve> raw(runs.size()), smooth(runs.size()), val(runs.size());
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  const auto take = [&](const std::vector<MetricPoint>& pts, Curve& c) {
    for (const auto& p : pts) {
      if (options.log_x && p.step <= 0) continue;
      c.x.push_back(p.step);
      c.y.push_back(p.value);
      xmin = std::min(xmin, p.step), xmax = std::max(xmax, p.step);
      ymin = std::min(ymin, p.value), ymax = std::max(ymax, p.value);
    }
  };
  const char* what = want_train && want_val ? "loss or val_loss" : want_train ? "loss" : "val_loss";
  for (size_t i = 0; i < runs.size(); ++i) {
    if (want_train) {
      take(runs[i].train, raw[i]);
      smooth[i] = raw[i];
      smooth[i].y = moving_average(raw[i].y, window);
    }
    if (want_val) take(runs[i].val, val[i]);
    if (raw[i].x.empty() && val[i].x.empty() && runs.size() > 1)
      warn("run " + runs[i].name + " has no " + what + " values to plot");
  }
  if (!(xmin <= xmax)) {
    std::string names;
    for (const auto& r : runs) names += (names.empty() ? "" : ", ") + r.name;
    throw Error(std::string("no data points to plot: no ") + what + " values" +
                (options.log_x ? " at steps > 0" : "") + " in " +
                (names.empty() ? std::string("any run") : names));
  }

  // Axis ranges: x from the data (from 0 when the data starts near it), y with a margin.
  if (options.log_x) {
    if (xmax / xmin < 1.5) xmin /= 1.5, xmax *= 1.5;
  } else {
    if (xmin > 0 && xmin <= 0.25 * xmax) xmin = 0;
    if (xmax - xmin < 1e-9) xmin -= 1, xmax += 1;
  }
  {
    const double span = ymax - ymin;
    if (span < 1e-9 * std::max(1.0, std::abs(ymax))) {  // one value: centre it
      const double half = std::max(0.05, std::abs(ymax) * 0.05);
      ymin -= half, ymax += half;
    } else {
      ymin -= 0.06 * span, ymax += 0.06 * span;
    }
  }

  // Sizes in canvas pixels (kSS per output pixel). Text scales are whole output pixels per
  // font pixel, so glyphs stay crisp.
  const int S = kSS;
  const int W = options.width * S, H = options.height * S;
  const int tick_scale = 2 * S;   // tick labels and legend
  const int label_scale = 2 * S;  // axis titles
  const int gh = font::kCapHeight;
  const int pad = 10 * S, tick_len = 5 * S, gap = 6 * S;

  std::vector<Tick> yticks;
  {
    const auto v = nice_ticks(ymin, ymax, std::clamp(options.height / 70, 3, 10));
    const auto labels = linear_labels(v, false);
    for (size_t k = 0; k < v.size(); ++k) yticks.push_back({v[k], labels[k]});
  }
  int ylabel_w = 0;
  for (const auto& t : yticks) ylabel_w = std::max(ylabel_w, text_width(t.label, tick_scale));

  std::string title = raster::ascii(options.title.empty() ? (want_train && want_val
                                                         ? "Training and validation loss"
                                                     : want_train ? "Training loss"
                                                                  : "Validation loss")
                                                   : options.title);
  int title_scale = 3 * S;
  while (title_scale > S && text_width(title, title_scale) > W - 2 * pad) title_scale -= S;
  while (title.size() > 3 && text_width(title, title_scale) > W - 2 * pad)
    title = title.substr(0, title.size() - 4) + "...";
  const std::string xtitle = options.log_x ? "step (log scale)" : "step";
  const std::string ytitle = want_train ? (want_val ? "loss" : "training loss") : "validation loss";

  // Legend entries and box size.
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string name = raster::ascii(runs[i].name);
    if (name.size() > 32) name = name.substr(0, 29) + "...";
    if (!raw[i].x.empty()) entries.push_back({name, rgb(run_colour(i)), false});
    if (!val[i].x.empty()) entries.push_back({name + " val", rgb(run_colour(i)), true});
  }
  const int swatch = 28 * S, row_h = (font::kGlyphHeight + 4) * tick_scale;
  int legend_text_w = 0;
  for (const auto& e : entries)
    legend_text_w = std::max(legend_text_w, text_width(e.label, tick_scale));
  const int lw = gap + swatch + gap + legend_text_w + gap + gap / 2;
  const int lh = gap + static_cast<int>(entries.size()) * row_h + gap / 2;

  const double train_hw = 0.75 * S, val_hw = 1.25 * S, marker_r = 3.5 * S;
  const bool smoothed = want_train && window > 1;

  // Draws everything with the legend inside the plot (in the corner where it hides the least)
  // or, when that hides solid lines, to the right of it. *crowded reports the former.
  const auto draw = [&](bool legend_outside, bool* crowded) {
    Rect plot;
    plot.x0 = pad + gh * label_scale + gap + ylabel_w + gap + tick_len;
    plot.y0 = pad + gh * title_scale + 2 * gap;
    plot.x1 = W - pad - 2 * tick_scale * font::kGlyphWidth;
    if (legend_outside) plot.x1 = W - pad - lw - 2 * gap;
    plot.y1 = H - pad - gh * label_scale - 2 * gap - gh * tick_scale - gap - tick_len;
    check(plot.width() > 50 * S && plot.height() > 50 * S, "plot size too small for its labels");

    const double lx0 = options.log_x ? std::log10(xmin) : xmin;
    const double lx1 = options.log_x ? std::log10(xmax) : xmax;
    const auto px = [&](double x) {
      const double u = options.log_x ? std::log10(x) : x;
      return plot.x0 + (u - lx0) / (lx1 - lx0) * plot.width();
    };
    const auto py = [&](double y) { return plot.y1 - (y - ymin) / (ymax - ymin) * plot.height(); };

    // X ticks: as many as fit with room between the labels.
    std::vector<Tick> xticks;
    if (options.log_x) {
      xticks = log_ticks(xmin, xmax);
    } else {
      for (int k = std::clamp(plot.width() / S / 60, 3, 15); k >= 2; --k) {
        const auto v = nice_ticks(xmin, xmax, k);
        const auto labels = linear_labels(v, true);
        int widest = 0;
        for (const auto& l : labels) widest = std::max(widest, text_width(l, tick_scale));
        xticks.clear();
        for (size_t j = 0; j < v.size(); ++j) xticks.push_back({v[j], labels[j]});
        if (v.size() < 2 || px(v[1]) - px(v[0]) >= widest + 3 * tick_scale * font::kGlyphWidth)
          break;
      }
    }

    Canvas cv(W, H);
    for (const auto& t : xticks) {
      const int x = static_cast<int>(std::lround(px(t.value)));
      cv.fill_rect({x - S / 2, plot.y0, x - S / 2 + S, plot.y1},
                   t.label.empty() ? kMinorGrid : kGrid);
    }
    for (const auto& t : yticks) {
      const int y = static_cast<int>(std::lround(py(t.value)));
      cv.fill_rect({plot.x0, y - S / 2, plot.x1, y - S / 2 + S}, kGrid);
    }

    // Data: faded raw training loss, smoothed training loss, validation loss with markers.
    const std::vector<uint8_t> before = cv.pixels();
    cv.set_clip(plot);
    const auto stroke = [&](const Curve& c, double half_width) {
      if (c.x.size() == 1) cv.cover_disc(px(c.x[0]), py(c.y[0]), half_width + S);
      for (size_t k = 1; k < c.x.size(); ++k)
        cv.cover_segment(px(c.x[k - 1]), py(c.y[k - 1]), px(c.x[k]), py(c.y[k]), half_width);
    };
    const auto markers = [&](const Curve& c, Rgb colour) {
      for (size_t k = 0; k < c.x.size(); ++k) cv.cover_disc(px(c.x[k]), py(c.y[k]), marker_r + S);
      cv.paint(kWhite);
      for (size_t k = 0; k < c.x.size(); ++k) cv.cover_disc(px(c.x[k]), py(c.y[k]), marker_r);
      cv.paint(colour);
    };
    if (smoothed)
      for (size_t i = 0; i < runs.size(); ++i) {
        stroke(raw[i], 0.5 * S);
        cv.paint(rgb(run_colour(i)), 0.22f);
      }
    for (size_t i = 0; i < runs.size(); ++i) {
      stroke(smooth[i], train_hw);
      cv.paint(rgb(run_colour(i)));
    }
    for (size_t i = 0; i < runs.size(); ++i) {
      stroke(val[i], val_hw);
      cv.paint(rgb(run_colour(i)));
      markers(val[i], rgb(run_colour(i)));
    }
    cv.reset_clip();

    // Legend.
    if (!entries.empty()) {
      Rect box;
      if (legend_outside) {
        box = {W - pad - lw, plot.y0, W - pad, plot.y0 + lh};
      } else {
        const int inset = 8 * S;
        const int L = plot.x0 + inset, R = plot.x1 - inset - lw, T = plot.y0 + inset,
                  B = plot.y1 - inset - lh, C = (plot.x0 + plot.x1 - lw) / 2;
        const std::pair<int, int> spots[] = {{R, T}, {L, T}, {R, B}, {L, B}, {C, T}, {C, B}};
        const auto& now = cv.pixels();
        long best = -1, best_solid = 0;
        for (const auto& [x, y] : spots) {
          const Rect r{std::max(0, x), std::max(0, y), std::min(W, x + lw), std::min(H, y + lh)};
          long ink = 0, solid = 0;
          for (int yy = r.y0; yy < r.y1; ++yy)
            for (int xx = r.x0; xx < r.x1; ++xx) {
              const size_t o = (static_cast<size_t>(yy) * W + xx) * 3;
              const int d = std::abs(now[o] - before[o]) + std::abs(now[o + 1] - before[o + 1]) +
                            std::abs(now[o + 2] - before[o + 2]);
              ink += d;
              solid += d > 200;  // a solid line, not a faded raw one
            }
          if (best < 0 || ink < best) best = ink, best_solid = solid, box = {x, y, x + lw, y + lh};
        }
        if (crowded) *crowded = best_solid > static_cast<long>(lw) * lh / 200;
      }
      cv.shade_rect(box, kWhite, 0.88f);
      cv.frame_rect({box.x0 + S, box.y0 + S, box.x1 - S, box.y1 - S}, S, kLegendBorder);
      for (size_t k = 0; k < entries.size(); ++k) {
        const auto& e = entries[k];
        const int top = box.y0 + gap + static_cast<int>(k) * row_h;
        const double cy = top - top % S + gh * tick_scale / 2.0;
        const double sx0 = box.x0 + gap, sx1 = sx0 + swatch;
        cv.cover_segment(sx0, cy, sx1, cy, e.val ? val_hw : train_hw);
        cv.paint(e.colour);
        if (e.val) {
          cv.cover_disc((sx0 + sx1) / 2, cy, marker_r + S);
          cv.paint(kWhite);
          cv.cover_disc((sx0 + sx1) / 2, cy, marker_r);
          cv.paint(e.colour);
        }
        cv.text(static_cast<int>(sx1) + gap, top, e.label, tick_scale, kText);
      }
    }

    // Frame, ticks, labels, titles.
    cv.frame_rect(plot, S, kFrame);
    for (const auto& t : yticks) {
      const int y = static_cast<int>(std::lround(py(t.value)));
      cv.fill_rect({plot.x0 - S - tick_len, y - S / 2, plot.x0 - S, y - S / 2 + S}, kFrame);
      const int tw = text_width(t.label, tick_scale);
      cv.text(plot.x0 - S - tick_len - gap - tw, y - gh * tick_scale / 2, t.label, tick_scale,
              kText);
    }
    for (const auto& t : xticks) {
      const int x = static_cast<int>(std::lround(px(t.value)));
      const int len = t.label.empty() ? tick_len / 2 : tick_len;
      cv.fill_rect({x - S / 2, plot.y1 + S, x - S / 2 + S, plot.y1 + S + len}, kFrame);
      if (t.label.empty()) continue;
      const int tw = text_width(t.label, tick_scale);
      cv.text(x - tw / 2, plot.y1 + S + tick_len + gap, t.label, tick_scale, kText);
    }
    const int xt_w = text_width(xtitle, label_scale);
    cv.text((plot.x0 + plot.x1 - xt_w) / 2, H - pad - gh * label_scale, xtitle, label_scale,
            kText);
    const int yt_w = text_width(ytitle, label_scale);
    cv.text_up(pad, (plot.y0 + plot.y1 + yt_w) / 2, ytitle, label_scale, kText);
    const int ti_w = text_width(title, title_scale);
    cv.text(std::clamp((plot.x0 + plot.x1 - ti_w) / 2, pad, W - pad - ti_w), pad, title,
            title_scale, kText);
    if (smoothed) {
      const std::string note = "training loss: moving average of " + std::to_string(window) +
                               " points (raw values faded)";
      const int nw = text_width(note, S);
      cv.text(W - pad - nw, H - pad - gh * S, note, S, kMuted);
    }
    return cv;
  };

  bool crowded = false;
  Canvas cv = draw(false, &crowded);
  if (crowded && lw <= W * 3 / 10) cv = draw(true, nullptr);

  // Average kSS x kSS blocks down to the output size.
  Image img;
  img.width = options.width, img.height = options.height;
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  const auto& src = cv.pixels();
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        int sum = 0;
        for (int dy = 0; dy < S; ++dy)
          for (int dx = 0; dx < S; ++dx)
            sum += src[((static_cast<size_t>(y) * S + dy) * W + x * S + dx) * 3 + ch];
        img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + ch] =
            static_cast<uint8_t>((sum + S * S / 2) / (S * S));
      }
  return img;
}

std::vector<uint8_t> encode_png(const Image& image) {
  check(image.width > 0 && image.height > 0 &&
            image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
        "encode_png: bad image size");
  std::vector<uint8_t> out;
  const auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    const auto* p = static_cast<const uint8_t*>(data);
    v->insert(v->end(), p, p + size);
  };
  if (!stbi_write_png_to_func(sink, &out, image.width, image.height, 3, image.rgb.data(),
                              image.width * 3))
    throw Error("cannot encode the PNG image");
  return out;
}

std::vector<uint8_t> plot_loss_curves(const std::vector<RunMetrics>& runs,
                                      const PlotOptions& options) {
  return encode_png(render_loss_curves(runs, options));
}

}  // namespace difftx
