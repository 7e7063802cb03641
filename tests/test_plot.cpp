// difftx plot: metrics.jsonl parsing, the rendered PNG (decoded back through cairo), errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "analysis/plot.h"
#include "core/error.h"
#include "core/rng.h"
#include "test_util.h"

namespace difftx {
namespace {
using test::TempDir;

namespace fs = std::filesystem;


void write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

// A decreasing noisy loss curve with evaluations every 50 steps, as metrics.jsonl text.
std::string fake_metrics(double start, double end, uint64_t seed, int steps = 300) {
  Rng rng(seed);
  std::string text;
  for (int s = 1; s <= steps; ++s) {
    const double mean = end + (start - end) * std::exp(-s / 60.0);
    text += "{\"step\": " + std::to_string(s) + ", \"loss\": " +
            std::to_string(mean + 0.15 * rng.normal()) +
            ", \"lr\": 0.001, \"grad_norm\": 0.8, \"tokens_per_s\": 900.0}\n";
    if (s % 50 == 0)
      text += "{\"step\": " + std::to_string(s) + ", \"val_loss\": " +
              std::to_string(mean + 0.05) + "}\n";
  }
  return text;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PlotMetrics, ParsesMixedStepAndEvalLines) {
  const std::string text =
      "{\"step\": 2, \"loss\": 3.0, \"lr\": 0.001, \"grad_norm\": 0.8, \"tokens_per_s\": 900.0}\n"
      "\n"
      "{\"step\": 1, \"loss\": 3.5, \"extra\": [1, 2]}\r\n"
      "   \n"
      "{\"step\": 2, \"val_loss\": 3.25}\n"
      "{\"step\": 3, \"loss\": null}\n"          // a skipped (non-finite) step
      "{\"note\": \"something else\"}\n"         // not a loss record: ignored
      "{\"step\": 4, \"loss\": 2.5, \"val_loss\": 2.75}";  // no final newline
  const RunMetrics m = parse_metrics(text, "m.jsonl");
  ASSERT_EQ(m.train.size(), 3u);
  EXPECT_EQ(m.train[0].step, 1);  // sorted by step
  EXPECT_DOUBLE_EQ(m.train[0].value, 3.5);
  EXPECT_EQ(m.train[1].step, 2);
  EXPECT_DOUBLE_EQ(m.train[1].value, 3.0);
  EXPECT_EQ(m.train[2].step, 4);
  ASSERT_EQ(m.val.size(), 2u);
  EXPECT_EQ(m.val[0].step, 2);
  EXPECT_DOUBLE_EQ(m.val[0].value, 3.25);
  EXPECT_DOUBLE_EQ(m.val[1].value, 2.75);
}

TEST(PlotMetrics, MalformedLineNamesFileAndLine) {
  const std::string bad = "{\"step\": 1, \"loss\": 3.5}\n\n{\"step\": 2, \"loss\": 3.\n";
  const std::string e = error_of([&] { parse_metrics(bad, "run/metrics.jsonl"); });
  EXPECT_NE(e.find("run/metrics.jsonl line 3"), std::string::npos) << e;
  EXPECT_NE(error_of([] { parse_metrics("[1, 2]\n", "f"); }).find("f line 1"), std::string::npos);
  EXPECT_NE(error_of([] { parse_metrics("{\"loss\": 1.0}\n", "f"); }).find("step"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_metrics("{\"step\": 1, \"loss\": \"x\"}\n", "f"); })
                .find("\"loss\" is not a number"),
            std::string::npos);
}

TEST(PlotMetrics, ReadsRunDirectoryAndNamesIt) {
  TempDir tmp;
  const fs::path run = tmp.path() / "diff-small";
  fs::create_directory(run);
  write_text(run / "metrics.jsonl", fake_metrics(8, 3, 1, 100));
  for (const std::string& dir : {run.string(), run.string() + "/"}) {
    const RunMetrics m = read_metrics(dir);
    EXPECT_EQ(m.name, "diff-small");
    EXPECT_EQ(m.train.size(), 100u);
    EXPECT_EQ(m.val.size(), 2u);
  }
}

TEST(PlotMetrics, MissingDirectoryOrFileIsAnError) {
  TempDir tmp;
  EXPECT_NE(error_of([&] { read_metrics((tmp.path() / "nope").string()); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_metrics(tmp.path().string()); }).find("no metrics.jsonl"),
            std::string::npos);
  write_text(tmp.path() / "metrics.jsonl", "{\"step\": 1, \"loss\": 2}\nnot json\n");
  const std::string e = error_of([&] { read_metrics(tmp.path().string()); });
  EXPECT_NE(e.find("metrics.jsonl line 2"), std::string::npos) << e;
}

TEST(PlotHelpers, MovingAverageTicksAndMetricNames) {
  const std::vector<double> v{0, 1, 2, 3, 10};
  EXPECT_EQ(moving_average(v, 1), v);
  const auto s = moving_average(v, 3);
  EXPECT_DOUBLE_EQ(s[0], 0);  // the ends are kept
  EXPECT_DOUBLE_EQ(s[1], 1);
  EXPECT_DOUBLE_EQ(s[3], 5);
  EXPECT_DOUBLE_EQ(s[4], 10);
  EXPECT_EQ(auto_smooth_window(10), 1);
  EXPECT_EQ(auto_smooth_window(300), 10);
  EXPECT_EQ(nice_ticks(0, 300, 8), (std::vector<double>{0, 50, 100, 150, 200, 250, 300}));
  const auto t = nice_ticks(2.83, 8.41, 6);
  ASSERT_GE(t.size(), 3u);
  EXPECT_GE(t.front(), 2.83);
  EXPECT_LE(t.back(), 8.41);
  EXPECT_LE(t.size(), 6u);
  EXPECT_EQ(parse_plot_metric("val_loss"), PlotMetric::kValLoss);
  EXPECT_THROW(parse_plot_metric("accuracy"), Error);
}

// Ticks for any finite range: never empty, inside the range, increasing, at most about the
// number asked for, with short labels. The range +-1e308 used to give no tick at all.
TEST(PlotAxes, TicksForAnyFiniteRange) {
  const double kMax = std::numeric_limits<double>::max();
  const auto check_ticks = [](double lo, double hi, int n) {
    SCOPED_TRACE(std::to_string(lo) + " .. " + std::to_string(hi) + " n " + std::to_string(n));
    const auto t = nice_ticks(lo, hi, n);
    ASSERT_FALSE(t.empty());
    EXPECT_LE(t.size(), static_cast<size_t>(std::max(n, 1)));
    const double slack = (hi * 0.5 - lo * 0.5) * 1e-6;
    for (size_t k = 0; k < t.size(); ++k) {
      EXPECT_TRUE(std::isfinite(t[k]));
      EXPECT_GE(t[k], lo - slack);
      EXPECT_LE(t[k], hi + slack);
      if (k) EXPECT_GT(t[k], t[k - 1]);
    }
    for (const auto& l : linear_labels(t, true)) EXPECT_LE(l.size(), 14u) << l;
  };
  for (int n : {2, 3, 6, 10}) {
    check_ticks(-1e308, 1e308, n);
    check_ticks(-kMax, kMax, n);
    check_ticks(0, kMax, n);
    check_ticks(1e-300, 3e-300, n);
    check_ticks(1.0, 1.0 + 4e-16, n);
    check_ticks(1e16, 1e16 + 8, n);
    check_ticks(2.83, 8.41, n);
  }
  EXPECT_EQ(nice_ticks(5, 5, 6), (std::vector<double>{5}));
  EXPECT_THROW(nice_ticks(0, std::numeric_limits<double>::infinity(), 5), Error);
  EXPECT_THROW(nice_ticks(std::nan(""), 1, 5), Error);
  Rng rng(11);
  for (int i = 0; i < 2000; ++i) {
    const double a = std::ldexp(rng.normal(), static_cast<int>(rng.uniform() * 2040) - 1020);
    const double b = std::ldexp(rng.normal(), static_cast<int>(rng.uniform() * 2040) - 1020);
    check_ticks(std::min(a, b), std::max(a, b), 2 + i % 9);
  }
}

TEST(PlotAxes, PaddedRangesStayFinite) {
  const double kMax = std::numeric_limits<double>::max();
  for (const auto& [lo, hi] : std::vector<std::pair<double, double>>{
           {-1e308, 1e308}, {-kMax, kMax}, {kMax, kMax}, {-kMax, -kMax}, {0, 0}, {3.5, 3.5},
           {1e-300, 1e-300}, {1, 2}}) {
    const AxisRange r = padded_range(lo, hi, 0.06);
    EXPECT_TRUE(std::isfinite(r.lo) && std::isfinite(r.hi)) << lo << " " << hi;
    EXPECT_LT(r.lo, r.hi) << lo << " " << hi;
    EXPECT_LE(r.lo, lo);
    EXPECT_GE(r.hi, hi);
    EXPECT_GE(axis_fraction(lo, r), 0.0);
    EXPECT_LE(axis_fraction(hi, r), 1.0);
  }
  EXPECT_EQ(linear_labels({-1e308, 0, 1e308}, false),
            (std::vector<std::string>{"-1e+308", "0", "1e+308"}));
  EXPECT_EQ(linear_labels({0, 5000, 10000}, true), (std::vector<std::string>{"0", "5k", "10k"}));
}

TEST(PlotRender, ExtremeLossesRender) {
  RunMetrics r = parse_metrics("{\"step\": 1, \"loss\": 1e308}\n{\"step\": 2, \"loss\": -1e308}\n"
                               "{\"step\": 2, \"val_loss\": 1e308}\n",
                               "huge");
  r.name = "huge";
  const Image img = render_loss_curves({r}, PlotOptions{});
  EXPECT_EQ(img.width, 1000);
  // The curve is drawn: pixels of the run's colour.
  size_t coloured = 0;
  const auto c = run_colour(0);
  for (size_t k = 0; k < img.rgb.size(); k += 3)
    coloured += std::abs(img.rgb[k] - c[0]) + std::abs(img.rgb[k + 1] - c[1]) +
                    std::abs(img.rgb[k + 2] - c[2]) <= 12;
  EXPECT_GT(coloured, 300u);
  const auto svg = plot_loss_curves({r}, PlotOptions{}, ImageFormat::kSvg);
  EXPECT_NE(std::string(svg.begin(), svg.end()).find("<svg"), std::string::npos);
}

TEST(PlotRender, TwoRunsGiveAValidPngWithBothColours) {
  RunMetrics a = parse_metrics(fake_metrics(8.0, 3.0, 1), "a");
  RunMetrics b = parse_metrics(fake_metrics(8.2, 3.4, 2), "b");
  a.name = "diff";
  b.name = "baseline";
  PlotOptions opts;
  opts.title = "diff vs baseline";
  const std::vector<uint8_t> png = plot_loss_curves({a, b}, opts);

  // Signature and IHDR.
  ASSERT_GT(png.size(), 33u);
  const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_TRUE(std::equal(sig, sig + 8, png.begin()));
  EXPECT_EQ(std::string(png.begin() + 12, png.begin() + 16), "IHDR");
  EXPECT_EQ(be32(&png[16]), 1000u);
  EXPECT_EQ(be32(&png[20]), 600u);

  // Decode and look at the pixels.
  const Image decoded = decode_png(png);
  const int w = decoded.width, h = decoded.height;
  const uint8_t* px = decoded.rgb.data();
  ASSERT_EQ(w, 1000);
  ASSERT_EQ(h, 600);
  std::map<uint32_t, size_t> counts;
  for (int i = 0; i < w * h; ++i)
    ++counts[(uint32_t(px[3 * i]) << 16) | (uint32_t(px[3 * i + 1]) << 8) | px[3 * i + 2]];
  const auto near = [&](std::array<uint8_t, 3> c) {
    size_t k = 0;
    for (int i = 0; i < w * h; ++i)
      if (std::abs(px[3 * i] - c[0]) + std::abs(px[3 * i + 1] - c[1]) +
              std::abs(px[3 * i + 2] - c[2]) <= 12)
        ++k;
    return k;
  };
  EXPECT_GT(near(run_colour(0)), 1000u);  // each run's lines and markers
  EXPECT_GT(near(run_colour(1)), 1000u);
  EXPECT_LT(near(run_colour(2)), 50u);  // no third run
  EXPECT_GT(counts[0xFFFFFF], static_cast<size_t>(w * h) / 2);  // the white background dominates
}

TEST(PlotRender, ValidationOnlyLogXAndSinglePoints) {
  RunMetrics a = parse_metrics(fake_metrics(8.0, 3.0, 1), "a");
  a.name = "a";
  PlotOptions opts;
  opts.metric = PlotMetric::kValLoss;
  opts.log_x = true;
  const Image img = render_loss_curves({a}, opts);
  EXPECT_EQ(img.width, 1000);
  EXPECT_EQ(img.height, 600);

  RunMetrics one;
  one.name = "one";
  one.train = {{0, 2.0}};
  opts = PlotOptions{};
  EXPECT_NO_THROW(render_loss_curves({one}, opts));
  opts.log_x = true;  // step 0 cannot be drawn on a log axis
  EXPECT_THROW(render_loss_curves({one}, opts), Error);
}

TEST(PlotRender, NoDataIsAnError) {
  RunMetrics empty;
  empty.name = "empty";
  const std::string e = error_of([&] { render_loss_curves({empty}, PlotOptions{}); });
  EXPECT_NE(e.find("no data points"), std::string::npos) << e;
  RunMetrics train_only = parse_metrics("{\"step\": 1, \"loss\": 2}\n", "t");
  PlotOptions opts;
  opts.metric = PlotMetric::kValLoss;
  EXPECT_THROW(render_loss_curves({train_only}, opts), Error);
  EXPECT_THROW(render_loss_curves({}, PlotOptions{}), Error);
}

}  // namespace
}  // namespace difftx
