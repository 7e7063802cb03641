#include "experiment/needle.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "analysis/attention_stats.h"
#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "experiment/runner.h"
#include "experiment/spec.h"
#include "io/tokenizer.h"
#include "model/config.h"
#include "tasks/summarize.h"
#include "train/dataset.h"

namespace difftx {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
const char* const kCities[] = {
    "Paris",  "Lagos",  "Lima",    "Oslo",    "Cairo",  "Delhi",   "Quito",   "Hanoi",
    "Dakar",  "Tunis",  "Sofia",   "Riga",    "Kyiv",   "Minsk",   "Baku",    "Doha",
    "Accra",  "Rabat",  "Dhaka",   "Seoul",   "Tokyo",  "Osaka",   "Perth",   "Miami",
    "Boston", "Denver", "Austin",  "Dallas",  "Havana", "Bogota",  "Caracas", "Madrid",
    "Lisbon", "Rome",   "Milan",   "Vienna",  "Prague", "Berlin",  "Munich",  "Zurich",
    "Geneva", "Dublin", "London",  "Leeds",   "Cardiff", "Nairobi", "Kampala", "Harare"};
constexpr int kNumCities = static_cast<int>(std::size(kCities));
const char* const kSeparator = "\nAnswer: ";
constexpr int64_t kQuestionBytes = 96;  // "\nQuestion: What is the magic number of CITY?"
constexpr int64_t kAnswerTokens = 8;    // four digits and the end, with room to spare

// The filler as one line of text: whitespace runs become one space.
std::string read_filler(const std::string& path) {
  std::string out;
  for (const std::string& f : resolve_sources(path)) {
    for (char ch : read_file_text(f)) {
      const bool space = std::isspace(static_cast<unsigned char>(ch)) != 0;
      if (space && (out.empty() || out.back() == ' ')) continue;
      out.push_back(space ? ' ' : ch);
    }
    if (!out.empty() && out.back() != ' ') out.push_back(' ');
  }
  return out;
}

std::string jsonl_of(const std::vector<NeedleExample>& ex) {
  std::string out;
  for (const NeedleExample& e : ex)
    out += json{{"document", e.document}, {"summary", e.answer}, {"needles", e.needles},
                {"depth_bin", e.depth_bin}}.dump() + "\n";
  return out;
}

std::string data_path(const std::string& out_dir, const char* split) {
  return (fs::path(out_dir) / "data" / (std::string("needle.") + split + ".jsonl")).string();
}

RunMeasures::NeedleCell& cell_of(RunMeasures& m, const NeedleExample& e) {
  for (RunMeasures::NeedleCell& c : m.needle)
    if (c.needles == e.needles && c.depth_bin == e.depth_bin) return c;
  m.needle.push_back({e.needles, e.depth_bin});
  return m.needle.back();
}

// Table 3, on the first noise_per_cell test examples of every cell: the attention that the
// answer position (the prompt's last token, which predicts the first digit) gives the queried
// needle's tokens, and the noise on the rest of the context, both as shares of the row's total
// |a| (a differential map's negative weights count against the needle and as noise by their
// magnitude), averaged over every layer and head of the effective maps.
void measure_needle_attention(const Summarizer& s, const NeedleSpec& spec,
                              const std::vector<NeedleExample>& test, RunMeasures& m) {
  std::map<std::pair<int, int>, int64_t> taken;
  for (const NeedleExample& e : test) {
    if (taken[{e.needles, e.depth_bin}]++ >= spec.noise_per_cell) continue;
    const std::vector<int32_t> ids = summary_prompt(s, e.document);
    const int64_t T = static_cast<int64_t>(ids.size());
    const std::string_view doc(e.document);
    Span span;
    span.start = static_cast<int64_t>(s.tok->encode(doc.substr(0, static_cast<size_t>(e.needle_begin))).size());
    span.end = static_cast<int64_t>(s.tok->encode(doc.substr(0, static_cast<size_t>(e.needle_end))).size());
    span.rows_from = T - 1;
    check(span.start < span.end && span.end < T, "needle: the queried needle (tokens ", span.start,
          "-", span.end, ") is not inside the prompt of ", T, " tokens");
    StatisticsOptions so;
    so.span = span;
    const AttentionStatistics st = attention_statistics(*s.model, ids.data(), 1, T, so);
    RunMeasures::NeedleCell& c = cell_of(m, e);
    c.span_attention += st.span_mean.attention;
    c.span_noise += st.span_mean.noise;
    c.span_examples += 1;
  }
  for (RunMeasures::NeedleCell& c : m.needle)
    if (c.span_examples > 0) {
      c.span_attention /= static_cast<double>(c.span_examples);
      c.span_noise /= static_cast<double>(c.span_examples);
    }
}
}  // namespace

std::vector<NeedleExample> needle_examples(const NeedleSpec& spec, const std::string& filler,
                                           int split) {
  check(!spec.needles.empty() && spec.depth_bins >= 1, "needle: needles and depth_bins are required");
  const int64_t n = static_cast<int64_t>(filler.size());
  const int64_t lo = split == 0 ? 0 : n * 9 / 10, hi = split == 0 ? n * 9 / 10 : n;
  Rng rng(spec.data_seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(split) + 1);
  std::vector<std::pair<int, int>> cells;  // (N, depth bin) of each example
  if (split == 2) {
    for (int N : spec.needles)
      for (int b = 0; b < spec.depth_bins; ++b)
        for (int64_t i = 0; i < spec.test_per_cell; ++i) cells.push_back({N, b});
  } else {
    const int64_t count = split == 0 ? spec.train_examples : spec.val_examples;
    for (int64_t i = 0; i < count; ++i)
      cells.push_back({spec.needles[rng.below(spec.needles.size())],
                       static_cast<int>(rng.below(static_cast<uint64_t>(spec.depth_bins)))});
  }
  std::vector<NeedleExample> out;
  out.reserve(cells.size());
  for (const auto& [N, bin] : cells) {
    check(N >= 1 && N <= kNumCities, "needle: a document holds 1 to ", kNumCities, " needles, got ", N);
    // N distinct cities and numbers; the first is the one asked for.
    std::vector<int> city(kNumCities);
    for (int i = 0; i < kNumCities; ++i) city[i] = i;
    std::vector<int> number;
    std::vector<std::string> needle;
    int64_t needle_bytes = 0;
    for (int i = 0; i < N; ++i) {
      std::swap(city[i], city[i + static_cast<int>(rng.below(static_cast<uint64_t>(kNumCities - i)))]);
      int num;
      do num = 1000 + static_cast<int>(rng.below(9000));
      while (std::find(number.begin(), number.end(), num) != number.end());
      number.push_back(num);
      needle.push_back(std::string(" The magic number of ") + kCities[city[i]] + " is " +
                       std::to_string(num) + ". ");
      needle_bytes += static_cast<int64_t>(needle.back().size());
    }
    const int64_t L = spec.context_bytes - needle_bytes;
    check(L >= spec.context_bytes / 4, "needle: context_bytes ", spec.context_bytes,
          " leaves too little filler around ", N, " needles (", needle_bytes, " bytes)");
    check(hi - lo > 2 * L, "needle: the filler text (", n, " bytes) is too short for haystacks of ",
          L, " bytes");
    int64_t start = lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo - 2 * L)));
    while (start < hi && filler[static_cast<size_t>(start)] != ' ') ++start;  // a word's start
    const std::string hay = filler.substr(static_cast<size_t>(start + 1), static_cast<size_t>(L));
    // Insertion points: the queried needle within its depth bin, the distractors anywhere.
    std::vector<std::pair<int64_t, int>> at;  // (position in hay, needle)
    at.push_back({static_cast<int64_t>((bin + rng.uniform()) / spec.depth_bins * static_cast<double>(L)), 0});
    for (int i = 1; i < N; ++i) at.push_back({static_cast<int64_t>(rng.below(static_cast<uint64_t>(L + 1))), i});
    std::stable_sort(at.begin(), at.end());
    NeedleExample e;
    int64_t pos = 0;
    for (const auto& [p, i] : at) {
      e.document += hay.substr(static_cast<size_t>(pos), static_cast<size_t>(p - pos));
      if (i == 0) {  // without the spaces around it
        e.needle_begin = static_cast<int64_t>(e.document.size()) + 1;
        e.needle_end = e.needle_begin + static_cast<int64_t>(needle[0].size()) - 2;
      }
      e.document += needle[static_cast<size_t>(i)];
      pos = p;
    }
    e.document += hay.substr(static_cast<size_t>(pos));
    e.document += std::string("\nQuestion: What is the magic number of ") + kCities[city[0]] + "?";
    e.answer = std::to_string(number[0]);
    e.needles = N;
    e.depth_bin = bin;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<NeedleExample> prepare_needle_data(const NeedleSpec& spec, const std::string& out_dir) {
  const std::string filler = read_filler(spec.filler);
  fs::create_directories(fs::path(out_dir) / "data");
  const char* names[] = {"train", "validation", "test"};
  std::vector<NeedleExample> test;
  for (int split = 0; split < 3; ++split) {
    auto ex = needle_examples(spec, filler, split);
    const std::string path = data_path(out_dir, names[split]);
    // Deterministic: the same spec writes the same bytes, so a resumed experiment's files stay.
    const std::string text = jsonl_of(ex);
    if (!fs::exists(path) || read_file_text(path) != text) write_file_atomic(path, text);
    if (split == 2) test = std::move(ex);
  }
  return test;
}

bool needle_run(const ExperimentSpec& spec, const ExperimentArm& arm, double lr, uint64_t seed,
                const std::string& dir, const ExperimentOptions& o,
                const std::vector<NeedleExample>& test, RunMeasures& m) {
  SummarizeTrainRequest req;
  req.out = dir;
  req.resume = fs::exists(fs::path(dir) / TaskRun::kStateFile);
  if (!req.resume) {
    const auto tok = make_tokenizer(spec.tokenizer);
    const Config c = arm_config(arm, tok->vocab_size(), spec.source);
    const fs::path cfg = fs::path(o.out_dir) / "configs" / (arm.name + ".json");
    fs::create_directories(cfg.parent_path());
    write_file_atomic(cfg.string(), config_to_json(c));
    fs::create_directories(fs::path(dir).parent_path());
    req.config = cfg.string();
    req.tokenizer = spec.tokenizer;
    req.data = data_path(o.out_dir, "train");
    req.val = data_path(o.out_dir, "validation");
    req.val_max = spec.needle.val_examples;
    req.separator = kSeparator;
    req.max_document_tokens = spec.needle.context_bytes + kQuestionBytes;
    req.max_summary_tokens = kAnswerTokens;
    TaskTrainOptions& t = req.opts;
    t.steps = spec.train.steps;
    t.batch = spec.train.batch;
    t.lr = lr;
    t.seed = seed;
    t.warmup = spec.train.warmup;
    t.weight_decay = spec.train.weight_decay;
    t.grad_clip = spec.train.grad_clip;
    t.min_lr_ratio = spec.train.min_lr_ratio;
    t.eval_every = spec.train.eval_every;
    t.patience = 0;  // every arm trains its whole budget; the best validation weights are kept
    t.save_every = std::max<int64_t>(1, spec.train.save_every);
  }
  TaskRunObserver obs;
  obs.stop = o.stop;
  obs.on_step = [&](const StepRecord& r) {
    const int64_t steps = spec.train.steps;
    if (o.progress && (r.step % std::max<int64_t>(1, steps / 10) == 0 || r.step == steps)) {
      char line[256];
      std::snprintf(line, sizeof line, "%s: step %lld/%lld loss %.4f (%.0f tok/s)", dir.c_str(),
                    static_cast<long long>(r.step), static_cast<long long>(steps), r.loss, r.tokens_per_s);
      o.progress(line);
    }
  };
  const TaskRunResult r = summarize_train(req, obs);
  if (r.interrupted) return false;
  m = measures_of_training(dir);
  m.val_loss = r.has_validation ? -r.best_score : 0.0;  // of the answers, at the kept weights

  const Summarizer s = load_summarizer(dir);
  std::vector<SummaryExample> ex;
  for (const NeedleExample& e : test) ex.push_back({e.document, e.answer, 0});
  SummarizeOptions so;
  so.batch = 16;  // greedy
  const Summaries answers = summarize_all(s, ex, so);
  for (size_t i = 0; i < test.size(); ++i) {
    std::string a = answers.texts[i];
    while (!a.empty() && std::isspace(static_cast<unsigned char>(a.back()))) a.pop_back();
    while (!a.empty() && std::isspace(static_cast<unsigned char>(a.front()))) a.erase(a.begin());
    RunMeasures::NeedleCell& cell = cell_of(m, test[i]);
    cell.total += 1;
    cell.correct += a == test[i].answer ? 1 : 0;
  }
  if (spec.needle.noise_per_cell > 0) measure_needle_attention(s, spec.needle, test, m);
  return true;
}

}  // namespace difftx
