#include "analysis/plot.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "core/error.h"

namespace difftx {

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
  // Sums of halves: values near the largest doubles must not overflow.
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + values[i] / static_cast<double>(n);
  const size_t half = static_cast<size_t>(window) / 2;
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t h = std::min({half, i, n - 1 - i});
    if (h == 0) {
      out[i] = values[i];
      continue;
    }
    out[i] = (prefix[i + h + 1] - prefix[i - h]) * (static_cast<double>(n) / (2 * h + 1));
  }
  return out;
}

int auto_smooth_window(size_t n) {
  return static_cast<int>(std::max<size_t>(1, (n + 15) / 30));
}

namespace {

constexpr Rgb kText{34, 34, 34};
constexpr Rgb kMuted{110, 110, 110};
constexpr Rgb kGrid{226, 226, 226};
constexpr Rgb kMinorGrid{242, 242, 242};
constexpr Rgb kFrame{85, 85, 85};
constexpr Rgb kLegendBorder{190, 190, 190};
constexpr Rgb kWhite{255, 255, 255};

// Font sizes (em, in pixels) and spacing.
constexpr double kTitleSize = 19, kAxisTitleSize = 15, kTickSize = 13, kNoteSize = 11;
constexpr double kPad = 12, kGap = 7, kTickLen = 5;
constexpr double kTrainWidth = 1.6, kValWidth = 2.6, kRawWidth = 1.0, kMarkerRadius = 3.6;
constexpr double kSwatch = 28;

Rgb rgb(std::array<uint8_t, 3> c) { return {c[0], c[1], c[2]}; }

struct Curve {
  std::vector<double> x, y;  // data coordinates
};

struct LegendEntry {
  std::string label;
  Rgb colour;
  bool val;  // thick line with a marker; else the thin training line
};

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double width() const { return x1 - x0; }
  double height() const { return y1 - y0; }
  bool contains(double x, double y) const { return x >= x0 && x < x1 && y >= y0 && y < y1; }
};

// What the options and data ask to draw, in data coordinates, before any layout.
struct PlotData {
  bool want_train = false, want_val = false;
  int window = 1;
  bool smoothed = false;
  std::vector<Curve> raw, smooth, val;  // per run
  AxisRange x, y;
  std::string title, xtitle, ytitle;
  std::vector<LegendEntry> entries;
};

PlotData prepare(const std::vector<RunMetrics>& runs, const PlotOptions& options) {
  PlotData d;
  d.want_train = options.metric != PlotMetric::kValLoss;
  d.want_val = options.metric != PlotMetric::kLoss;
  // One smoothing window for all runs, so they compare fairly.
  size_t max_train = 0;
  for (const auto& r : runs) max_train = std::max(max_train, r.train.size());
  d.window = options.smooth ? std::max(1, *options.smooth) : auto_smooth_window(max_train);
  d.smoothed = d.want_train && d.window > 1;
  d.raw.resize(runs.size()), d.smooth.resize(runs.size()), d.val.resize(runs.size());
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  const auto take = [&](const std::vector<MetricPoint>& pts, Curve& c) {
    for (const auto& p : pts) {
      if (options.log_x && p.step <= 0) continue;
      if (!std::isfinite(p.step) || !std::isfinite(p.value)) continue;  // read_metrics drops them
      c.x.push_back(p.step);
      c.y.push_back(p.value);
      xmin = std::min(xmin, p.step), xmax = std::max(xmax, p.step);
      ymin = std::min(ymin, p.value), ymax = std::max(ymax, p.value);
    }
  };
  const char* what = d.want_train && d.want_val ? "loss or val_loss"
                     : d.want_train             ? "loss"
                                                : "val_loss";
  for (size_t i = 0; i < runs.size(); ++i) {
    if (d.want_train) {
      take(runs[i].train, d.raw[i]);
      d.smooth[i] = d.raw[i];
      d.smooth[i].y = moving_average(d.raw[i].y, d.window);
    }
    if (d.want_val) take(runs[i].val, d.val[i]);
    if (d.raw[i].x.empty() && d.val[i].x.empty() && runs.size() > 1)
      warn("run " + runs[i].name + " has no " + what + " values to plot");
  }
  if (!(xmin <= xmax)) {
    std::string names;
    for (const auto& r : runs) names += (names.empty() ? "" : ", ") + r.name;
    throw Error(std::string("no data points to plot: no ") + what + " values" +
                (options.log_x ? " at steps > 0" : "") + " in " +
                (names.empty() ? std::string("any run") : names));
  }

  // x from the data (from 0 when the data starts near it), y with a margin.
  if (options.log_x) {
    if (xmax / xmin < 1.5) xmin /= 1.5, xmax *= 1.5;
    d.x = {xmin, xmax};
  } else {
    if (xmin > 0 && xmin <= 0.25 * xmax) xmin = 0;
    d.x = padded_range(xmin, xmax, 0);
    if (xmax - xmin < 1e-9) d.x = {xmin - 1, xmax + 1};
    if (!(d.x.hi > d.x.lo)) d.x = padded_range(xmin, xmax, 0);  // steps near the largest doubles
  }
  d.y = padded_range(ymin, ymax, 0.06);

  d.title = options.title.empty() ? (d.want_train && d.want_val ? "Training and validation loss"
                                     : d.want_train             ? "Training loss"
                                                                : "Validation loss")
                                  : options.title;
  d.xtitle = !options.x_title.empty() ? options.x_title : options.log_x ? "step (log scale)" : "step";
  d.ytitle = !options.y_title.empty() ? options.y_title
             : d.want_train         ? (d.want_val ? "loss" : "training loss")
                                    : "validation loss";
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string name = printable_utf8(runs[i].name);
    if (name.size() > 40) name = printable_utf8(name.substr(0, 37)) + "...";
    if (!d.raw[i].x.empty()) d.entries.push_back({name, rgb(run_colour(i)), false});
    if (!d.val[i].x.empty()) d.entries.push_back({name + options.val_legend_suffix, rgb(run_colour(i)), true});
  }
  return d;
}

// Where everything goes on a canvas of W x H.
struct Layout {
  Box plot, legend;
  bool legend_outside = false;
  std::vector<Tick> xticks, yticks;
  double title_size = kTitleSize;
  std::string title;
  std::function<double(double)> px, py;  // data -> canvas coordinates
};

Layout make_layout(const Canvas& cv, const PlotData& d, const PlotOptions& options,
                   bool legend_outside) {
  const double W = cv.width(), H = cv.height();
  Layout L;
  L.legend_outside = legend_outside;
  {
    const auto v = nice_ticks(d.y.lo, d.y.hi, std::clamp(options.height / 70, 3, 10));
    const auto labels = linear_labels(v, false);
    for (size_t k = 0; k < v.size(); ++k) L.yticks.push_back({v[k], labels[k]});
  }
  double ylabel_w = 0;
  for (const auto& t : L.yticks) ylabel_w = std::max(ylabel_w, cv.text_width(t.label, kTickSize));

  // The title shrinks, then is cut, to fit the width.
  L.title = printable_utf8(d.title);
  while (L.title_size > 10 && cv.text_width(L.title, L.title_size, true) > W - 2 * kPad)
    L.title_size -= 1;
  while (L.title.size() > 3 && cv.text_width(L.title, L.title_size, true) > W - 2 * kPad)
    L.title = printable_utf8(L.title.substr(0, L.title.size() - 4)) + "...";

  double legend_text_w = 0;
  for (const auto& e : d.entries)
    legend_text_w = std::max(legend_text_w, cv.text_width(e.label, kTickSize));
  const double row_h = kTickSize * 1.55;
  const double lw = kGap + kSwatch + kGap + legend_text_w + 1.5 * kGap;
  const double lh = kGap + static_cast<double>(d.entries.size()) * row_h + kGap / 2;

  Box& p = L.plot;
  p.x0 = kPad + kAxisTitleSize * 1.2 + kGap + ylabel_w + kGap + kTickLen;
  p.y0 = kPad + kTitleSize * 1.25 + kGap;
  p.x1 = legend_outside ? W - kPad - lw - 2 * kGap : W - kPad - 2 * kTickSize;
  p.y1 = H - kPad - (d.smoothed ? kNoteSize * 1.4 : 0) - kAxisTitleSize * 1.3 - kGap -
         kTickSize * 1.2 - kTickLen;
  check(p.width() > 50 && p.height() > 50, "plot size too small for its labels");

  const double lx0 = options.log_x ? std::log10(d.x.lo) : d.x.lo;
  const double lx1 = options.log_x ? std::log10(d.x.hi) : d.x.hi;
  const AxisRange xr{lx0, lx1};
  const bool log_x = options.log_x;
  L.px = [p, xr, log_x](double x) {
    return p.x0 + axis_fraction(log_x ? std::log10(x) : x, xr) * p.width();
  };
  const AxisRange yr = d.y;
  L.py = [p, yr](double y) { return p.y1 - axis_fraction(y, yr) * p.height(); };

  // X ticks: as many as fit with room between the labels.
  if (options.log_x) {
    L.xticks = log_ticks(d.x.lo, d.x.hi);
  } else {
    for (int k = std::clamp(static_cast<int>(p.width() / 60), 3, 15); k >= 2; --k) {
      const auto v = nice_ticks(d.x.lo, d.x.hi, k);
      const auto labels = linear_labels(v, true);
      double widest = 0;
      for (const auto& l : labels) widest = std::max(widest, cv.text_width(l, kTickSize));
      L.xticks.clear();
      for (size_t j = 0; j < v.size(); ++j) L.xticks.push_back({v[j], labels[j]});
      if (v.size() < 2 || L.px(v[1]) - L.px(v[0]) >= widest + 2 * kTickSize) break;
    }
  }

  if (legend_outside) {
    L.legend = {W - kPad - lw, p.y0, W - kPad, p.y0 + lh};
  } else {
    // The corner (or edge middle) that the solid curves cross least.
    const double inset = 8;
    const double l = p.x0 + inset, r = p.x1 - inset - lw, t = p.y0 + inset,
                 b = p.y1 - inset - lh, c = (p.x0 + p.x1 - lw) / 2;
    const std::pair<double, double> spots[] = {{r, t}, {l, t}, {r, b}, {l, b}, {c, t}, {c, b}};
    double best = -1;
    for (const auto& [x, y] : spots) {
      const Box box{x, y, x + lw, y + lh};
    const double m = kMarkerRadius + 2;  // markers just outside still touch it
    const Box reach{box.x0 - m, box.y0 - m, box.x1 + m, box.y1 + m};
      double ink = 0;
      const auto walk = [&](const Curve& cu, double weight) {
        for (size_t k = 0; k < cu.x.size(); ++k) {
          const double ax = L.px(cu.x[k]), ay = L.py(cu.y[k]);
          const double bx = k + 1 < cu.x.size() ? L.px(cu.x[k + 1]) : ax;
          const double by = k + 1 < cu.x.size() ? L.py(cu.y[k + 1]) : ay;
          const int n = 1 + static_cast<int>(std::min(2000.0, std::hypot(bx - ax, by - ay)));
          for (int s = 0; s < n; ++s)  // samples about a pixel apart
            if (reach.contains(ax + (bx - ax) * s / n, ay + (by - ay) * s / n)) ink += weight;
        }
      };
      for (size_t i = 0; i < d.raw.size(); ++i) {
        if (d.smoothed) walk(d.raw[i], 0.1);
        walk(d.smooth[i], 1);
        walk(d.val[i], 1);
      }
      if (best < 0 || ink < best) best = ink, L.legend = box;
    }
    L.legend_outside = best > 30;  // a solid curve runs under it: a request to move it out
  }
  return L;
}

void draw(Canvas& cv, const PlotData& d, const Layout& L) {
  const Box& p = L.plot;
  const double W = cv.width(), H = cv.height();
  for (const auto& t : L.xticks) {
    const double x = std::round(L.px(t.value)) + 0.5;
    cv.fill_rect(x - 0.5, p.y0, 1, p.height(), t.label.empty() ? kMinorGrid : kGrid);
  }
  for (const auto& t : L.yticks) {
    const double y = std::round(L.py(t.value)) + 0.5;
    cv.fill_rect(p.x0, y - 0.5, p.width(), 1, kGrid);
  }

  // Data: faded raw training loss, smoothed training loss, validation loss with markers.
  cv.clip(p.x0, p.y0, p.width(), p.height());
  const auto points = [&](const Curve& c, std::vector<double>& xs, std::vector<double>& ys) {
    xs.clear(), ys.clear();
    for (size_t k = 0; k < c.x.size(); ++k) xs.push_back(L.px(c.x[k])), ys.push_back(L.py(c.y[k]));
  };
  std::vector<double> xs, ys;
  for (size_t i = 0; i < d.raw.size(); ++i) {
    if (!d.smoothed) continue;
    points(d.raw[i], xs, ys);
    cv.polyline(xs, ys, rgb(run_colour(i)), kRawWidth, 0.25);
  }
  for (size_t i = 0; i < d.smooth.size(); ++i) {
    points(d.smooth[i], xs, ys);
    cv.polyline(xs, ys, rgb(run_colour(i)), xs.size() == 1 ? 2 * kMarkerRadius : kTrainWidth);
  }
  for (size_t i = 0; i < d.val.size(); ++i) {
    points(d.val[i], xs, ys);
    cv.polyline(xs, ys, rgb(run_colour(i)), kValWidth);
    for (size_t k = 0; k < xs.size(); ++k) {
      cv.disc(xs[k], ys[k], kMarkerRadius + 1.2, kWhite);
      cv.disc(xs[k], ys[k], kMarkerRadius, rgb(run_colour(i)));
    }
  }
  cv.reset_clip();

  // Legend.
  if (!d.entries.empty()) {
    const Box& b = L.legend;
    cv.fill_rect(b.x0, b.y0, b.width(), b.height(), kWhite, 0.88);
    cv.frame_rect(b.x0 + 1, b.y0 + 1, b.width() - 2, b.height() - 2, kLegendBorder);
    const double row_h = kTickSize * 1.55;
    for (size_t k = 0; k < d.entries.size(); ++k) {
      const auto& e = d.entries[k];
      const double base = b.y0 + kGap + static_cast<double>(k) * row_h + Canvas::cap_height(kTickSize);
      const double cy = base - Canvas::cap_height(kTickSize) / 2;
      const double sx0 = b.x0 + kGap, sx1 = sx0 + kSwatch;
      cv.polyline({sx0, sx1}, {cy, cy}, e.colour, e.val ? kValWidth : kTrainWidth);
      if (e.val) {
        cv.disc((sx0 + sx1) / 2, cy, kMarkerRadius + 1.2, kWhite);
        cv.disc((sx0 + sx1) / 2, cy, kMarkerRadius, e.colour);
      }
      cv.text(sx1 + kGap, base, e.label, kTickSize, kText);
    }
  }

  // Frame, ticks, labels, titles.
  cv.frame_rect(p.x0, p.y0, p.width(), p.height(), kFrame);
  for (const auto& t : L.yticks) {
    const double y = std::round(L.py(t.value)) + 0.5;
    cv.fill_rect(p.x0 - 1 - kTickLen, y - 0.5, kTickLen, 1, kFrame);
    cv.text(p.x0 - 1 - kTickLen - kGap, y + Canvas::cap_height(kTickSize) / 2, t.label, kTickSize,
            kText, Align::kRight);
  }
  for (const auto& t : L.xticks) {
    const double x = std::round(L.px(t.value)) + 0.5;
    const double len = t.label.empty() ? kTickLen / 2 : kTickLen;
    cv.fill_rect(x - 0.5, p.y1 + 1, 1, len, kFrame);
    if (t.label.empty()) continue;
    cv.text(x, p.y1 + 1 + kTickLen + kGap / 2 + Canvas::cap_height(kTickSize), t.label, kTickSize,
            kText, Align::kCentre);
  }
  const double xtitle_base = p.y1 + 1 + kTickLen + kGap / 2 + kTickSize * 1.2 + kGap +
                             Canvas::cap_height(kAxisTitleSize);
  cv.text((p.x0 + p.x1) / 2, xtitle_base, d.xtitle, kAxisTitleSize, kText, Align::kCentre);
  cv.text_up(kPad + Canvas::cap_height(kAxisTitleSize), (p.y0 + p.y1) / 2, d.ytitle,
             kAxisTitleSize, kText, Align::kCentre);
  const double tw = cv.text_width(L.title, L.title_size, true);
  const double tx = std::clamp((p.x0 + p.x1 - tw) / 2, kPad, std::max(kPad, W - kPad - tw));
  cv.text(tx, kPad + Canvas::cap_height(kTitleSize), L.title, L.title_size, kText, Align::kLeft,
          true);
  if (d.smoothed)
    cv.text(W - kPad, H - kPad, "training loss: moving average of " + std::to_string(d.window) +
                                    " points (raw values faded)",
            kNoteSize, kMuted, Align::kRight);
}

// Lays out and draws onto a new canvas of the options' size.
std::unique_ptr<Canvas> draw_plot(const std::vector<RunMetrics>& runs, const PlotOptions& options,
                                  ImageFormat format) {
  check(options.width >= 300 && options.height >= 200 && options.width <= 8000 &&
            options.height <= 8000,
        "plot size must be between 300x200 and 8000x8000 pixels");
  const PlotData d = prepare(runs, options);
  auto cv = std::make_unique<Canvas>(options.width, options.height, format);
  Layout L = make_layout(*cv, d, options, false);
  // A legend over solid curves moves to the right of the plot, unless that costs too much width.
  if (L.legend_outside) {
    const Layout outside = make_layout(*cv, d, options, true);
    if (outside.legend.width() <= options.width * 0.3) L = outside;
    else L.legend_outside = false;
  }
  draw(*cv, d, L);
  return cv;
}

}  // namespace

std::vector<uint8_t> plot_loss_curves(const std::vector<RunMetrics>& runs,
                                      const PlotOptions& options, ImageFormat format) {
  return draw_plot(runs, options, format)->finish();
}

Image render_loss_curves(const std::vector<RunMetrics>& runs, const PlotOptions& options) {
  return draw_plot(runs, options, ImageFormat::kPng)->finish_pixels();
}

}  // namespace difftx
