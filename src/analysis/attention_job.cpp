#include "analysis/attention_job.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "analysis/attention_maps.h"
#include "analysis/attention_stats.h"
#include "analysis/heatmap.h"
#include "analysis/report_html.h"
#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "io/tokens.h"

namespace difftx {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// One model on the text: inputs, then everything computed from them.
struct Subject {
  std::string dir, name;
  std::unique_ptr<Model> model;
  std::vector<int32_t> ids;
  std::vector<std::string> token_text;  // each position's text
  AttentionMaps maps;
  AttentionStatistics stats;
};

std::string base_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  const std::string name = p.filename().string();
  return name.empty() || name == "." ? dir : name;
}

// Loads the model, turns the text (or id list) into ids and checks them against its context.
Subject prepare(const std::string& dir, const AttentionJob& job) {
  Subject s;
  s.dir = dir;
  s.name = base_name(dir);
  s.model = load_model(dir);
  const Config& c = s.model->config;
  std::unique_ptr<Tokenizer> tok;
  if (has_tokenizer(dir)) tok = load_tokenizer(dir);
  if (job.text) {
    check_field(tok != nullptr, "tokens", " are needed: model ", dir,
                " has no tokenizer (difftx_tokenizer.json) to encode the text");
    check_field(!job.text->empty(), "text", " is empty: give some text to look at");
    s.ids = tok->encode(*job.text);
    check_field(!s.ids.empty(), "text", " encodes to no tokens");
    check(static_cast<int64_t>(s.ids.size()) <= c.max_position_embeddings,
          "the text is " + std::to_string(s.ids.size()) + " tokens long, more than the context of " +
              dir + " (max_position_embeddings " + std::to_string(c.max_position_embeddings) +
              "); shorten the text");
  } else {
    s.ids = parse_token_list(*job.tokens, c.vocab_size);
    check_field(static_cast<int64_t>(s.ids.size()) <= c.max_position_embeddings, "tokens",
                " gives ", s.ids.size(), " tokens, more than the context of ", dir,
                " (max_position_embeddings ", c.max_position_embeddings, ")");
  }
  check(tok == nullptr || tok->vocab_size() <= c.vocab_size,
        "the tokenizer of " + dir + " has more tokens than the model's vocab_size");
  DecodeState state;
  for (int32_t id : s.ids) {
    std::string piece;
    if (tok) tok->decode_append(id, state, piece);
    else piece.append("[").append(std::to_string(id)).append("]");  // no text without a tokenizer
    s.token_text.push_back(std::move(piece));
  }
  return s;
}

void compute(Subject& s, const StatisticsOptions& options) {
  ForwardRecord rec(options.activations);
  const int64_t T = static_cast<int64_t>(s.ids.size());
  run_reference_forward(*s.model, s.ids.data(), 1, T, rec);
  s.maps = extract_attention_maps(s.model->config, rec, 0);
  s.stats = statistics_from_forward(s.model->config, rec, options);
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// maps.safetensors, stats.json and heatmaps/ of one model into dir; returns the files written
// (relative to `prefix`).
std::vector<std::string> write_model_outputs(const Subject& s, const fs::path& dir,
                                             const std::string& prefix) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::create_directories(dir / "heatmaps", ec);
  check(!ec, "cannot create " + (dir / "heatmaps").string() + ": " + ec.message());
  const int64_t T = s.maps.T;
  std::vector<TensorToWrite> tensors;
  for (size_t l = 0; l < s.maps.layers.size(); ++l) {
    const LayerMaps& m = s.maps.layers[l];
    const std::string name = "layers." + std::to_string(l) + ".";
    tensors.push_back({name + "attn", {m.heads, T, T}, m.attn.data()});
    if (s.maps.diff) {
      tensors.push_back({name + "attn1", {m.heads, T, T}, m.attn1.data()});
      tensors.push_back({name + "attn2", {m.heads, T, T}, m.attn2.data()});
      if (m.token_lambda.empty())
        tensors.push_back({name + "lambda", {1}, &m.lambda});
      else  // V2: the lambda of each head and query token
        tensors.push_back({name + "lambda", {m.heads, T}, m.token_lambda.data()});
    }
  }
  std::string id_list;
  for (int32_t id : s.ids) {
    if (!id_list.empty()) id_list += ',';
    id_list += std::to_string(id);
  }
  write_safetensors((dir / "maps.safetensors").string(), tensors,
                    {{"format", "difftx-attention"},
                     {"model_type", model_type_name(s.maps.model_type)},
                     {"token_ids", id_list}});
  files.push_back(prefix + "maps.safetensors");

  json stats = {{"model", s.name}, {"model_dir", s.dir}, {"token_ids", s.ids},
                {"token_text", s.token_text}};
  stats.update(statistics_to_json(s.stats));
  write_file_atomic((dir / "stats.json").string(),
                    stats.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  files.push_back(prefix + "stats.json");

  std::vector<std::string> labels;
  for (const auto& t : s.token_text) labels.push_back(token_label(t));
  for (size_t l = 0; l < s.maps.layers.size(); ++l) {
    const LayerMaps& m = s.maps.layers[l];
    std::vector<float> mean(static_cast<size_t>(T * T), 0.f);
    for (int64_t h = 0; h < m.heads; ++h)
      for (int64_t k = 0; k < T * T; ++k)
        mean[static_cast<size_t>(k)] += m.attn[static_cast<size_t>(h * T * T + k)] /
                                        static_cast<float>(m.heads);
    const std::string what =
        !m.token_lambda.empty() ? "A1 - lambda[t]*A2, mean lambda = " + fixed(m.lambda, 3)
        : s.maps.diff           ? "A1 - lambda*A2, lambda = " + fixed(m.lambda, 3)
                                : std::string("softmax");
    const std::string layer = s.name + " layer " + std::to_string(l);
    const std::string one = "heatmaps/layer_" + std::to_string(l) + ".png";
    const std::string grid = "heatmaps/layer_" + std::to_string(l) + "_heads.png";
    const auto png1 = encode_png(render_heatmap(
        mean.data(), T, labels,
        layer + ": mean of " + std::to_string(m.heads) + " heads (" + what + ")"));
    write_file_atomic((dir / one).string(), png1.data(), png1.size());
    const auto png2 = encode_png(
        render_head_grid(m.attn.data(), m.heads, T, layer + ": every head (" + what + ")"));
    write_file_atomic((dir / grid).string(), png2.data(), png2.size());
    files.push_back(prefix + one);
    files.push_back(prefix + grid);
  }
  return files;
}

}  // namespace

AttentionJobSummary run_attention_job(const AttentionJob& job) {
  check(job.text.has_value() != job.tokens.has_value(),
        "give exactly one of a text and token ids to look at");
  check_field(std::isfinite(job.threshold) && job.threshold > 0, "threshold",
              " must be a positive number (the sparsity cut on |a|, e.g. 0.1)");
  check_field(!job.out_dir.empty(), "out", " is empty");

  std::vector<Subject> subjects;
  subjects.push_back(prepare(job.model_dir, job));
  if (job.compare_dir) subjects.push_back(prepare(*job.compare_dir, job));

  StatisticsOptions options;
  options.maps.threshold = job.threshold;
  options.activations = job.activations;
  if (job.span) {
    const int64_t T = static_cast<int64_t>(subjects[0].ids.size());
    options.span = parse_span(*job.span, T);
    for (const Subject& s : subjects)
      check_field(options.span->end < static_cast<int64_t>(s.ids.size()), "span", " ",
                  *job.span, " is outside the text as ", s.dir, " tokenises it (", s.ids.size(),
                  " tokens)");
  }

  StagedDirectory out(job.out_dir);  // fails early when the directory cannot be made
  for (Subject& s : subjects) compute(s, options);

  AttentionJobSummary summary;
  summary.tokens = subjects[0].maps.T;
  summary.layers = static_cast<int64_t>(subjects[0].maps.layers.size());
  summary.files = write_model_outputs(subjects[0], out.path(), "");
  if (subjects.size() > 1) {
    const auto more = write_model_outputs(subjects[1], fs::path(out.path()) / "compare",
                                          "compare/");
    summary.files.insert(summary.files.end(), more.begin(), more.end());
  }

  std::vector<ReportModel> report;
  std::string title = "difftx attention: " + subjects[0].name;
  for (size_t k = 0; k < subjects.size(); ++k) {
    const Subject& s = subjects[k];
    report.push_back({s.name, &s.maps, s.token_text, s.ids, statistics_to_json(s.stats)});
    if (k > 0) title += " vs " + s.name;
  }
  write_file_atomic((fs::path(out.path()) / "report.html").string(),
                    render_report_html(report, title));
  summary.files.push_back("report.html");
  out.commit();
  return summary;
}

}  // namespace difftx
