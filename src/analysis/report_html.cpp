#include "analysis/report_html.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "analysis/report_page.inc.h"  // generated from report_page.html (CMakeLists.txt)
#include "core/error.h"

namespace difftx {

namespace {

using json = nlohmann::ordered_json;

// Four significant digits keep the page small; the exact values are in maps.safetensors.
double round4(float v) {
  if (!std::isfinite(v) || v == 0.f) return 0.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", static_cast<double>(v));
  return std::strtod(buf, nullptr);
}

// [heads][lower triangle] of one set of [heads, T, T] maps.
json lower_triangles(const std::vector<float>& maps, int64_t heads, int64_t T) {
  json out = json::array();
  for (int64_t h = 0; h < heads; ++h) {
    json tri = json::array();
    const float* m = maps.data() + h * T * T;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) tri.push_back(round4(m[i * T + j]));
    out.push_back(std::move(tri));
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

json report_data(const std::vector<ReportModel>& models) {
  json out = json::array();
  for (const ReportModel& m : models) {
    check(m.maps != nullptr, "report: a model without maps");
    const AttentionMaps& maps = *m.maps;
    json layers = json::array();
    for (const LayerMaps& l : maps.layers) {
      json mj = {{"attn", lower_triangles(l.attn, l.heads, maps.T)}};
      if (maps.diff) {
        mj["attn1"] = lower_triangles(l.attn1, l.heads, maps.T);
        mj["attn2"] = lower_triangles(l.attn2, l.heads, maps.T);
      }
      json lj = {{"maps", std::move(mj)}};
      if (maps.diff) lj["lambda"] = l.lambda;  // V2: the mean of the per-token lambdas
      if (!l.token_lambda.empty()) lj["token_lambda"] = l.token_lambda;
      layers.push_back(std::move(lj));
    }
    json model = {{"name", m.name},
                  {"model_type", model_type_name(maps.model_type)},
                  {"T", maps.T},
                  {"tokens", m.tokens},
                  {"ids", m.ids},
                  {"layers", std::move(layers)},
                  {"stats", m.stats}};
    if (m.stats.contains("span"))
      model["span"] = {m.stats["span"]["start"], m.stats["span"]["end"]};
    out.push_back(std::move(model));
  }
  return out;
}

std::string render_report_html(const std::vector<ReportModel>& models, const std::string& title) {
  const json data = {{"title", title}, {"models", report_data(models)}};
  // Token text may hold invalid UTF-8 (a character split across tokens): replace, not throw.
  std::string text = data.dump(-1, ' ', false, json::error_handler_t::replace);
  // '<' only occurs inside JSON strings, where \u003c means the same; this keeps "</script>"
  // in a token from ending the data block.
  std::string safe;
  safe.reserve(text.size());
  for (char c : text) {
    if (c == '<') safe += "\\u003c";
    else safe += c;
  }
  // Both places are found in the template first, so a title holding "@DATA@" stays text.
  const std::string tpl = kReportPage;
  const size_t t = tpl.find("@TITLE@"), d = tpl.find("@DATA@");
  check(t != std::string::npos && d != std::string::npos && t < d, "report template is broken");
  return tpl.substr(0, t) + html_escape(title) + tpl.substr(t + 7, d - (t + 7)) + safe +
         tpl.substr(d + 6);
}

}  // namespace difftx
