#pragma once
// report.html: one self-contained page (inline CSS and JavaScript, no network) showing the
// attention maps of one model, or of several side by side on the same text. The data is
// embedded as JSON; plain JavaScript draws the selected layer / head / map on a canvas and a
// hover reads out the query token, the key token and the value.
//
// Once the first map is drawn the page sets on <body>: data-drawn="1", data-checksum (FNV-1a
// of the first canvas's pixels), data-coloured (pixels of the first canvas that are not grey)
// and data-errors (script errors seen), which the headless-browser test reads.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/attention_maps.h"

namespace difftx {

struct ReportModel {
  std::string name;                 // shown above the model's panel
  const AttentionMaps* maps = nullptr;
  std::vector<std::string> tokens;  // each position's text (UTF-8 bytes as decoded)
  std::vector<int32_t> ids;
  nlohmann::ordered_json stats;             // statistics_to_json of the same maps
};

// The page's data as JSON: per model its name, tokens, statistics and, per layer, lambda and
// each head's maps as lower triangles (row i holds keys 0..i), rounded to 4 significant digits.
nlohmann::ordered_json report_data(const std::vector<ReportModel>& models);

// The whole page.
std::string render_report_html(const std::vector<ReportModel>& models, const std::string& title);

}  // namespace difftx
