#include "tasks/summarize.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "infer/generate.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/presets.h"
#include "model/transformer.h"
#include "tasks/metrics.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

// The end of a summary: the end-of-text id, or a newline for tokenizers without one.
std::vector<int32_t> end_ids(const Summarizer& s) {
  if (s.tok->eos_id() >= 0) return {s.tok->eos_id()};
  return s.tok->encode("\n");
}

void check_fits(const Summarizer& s) {
  const int64_t sep = static_cast<int64_t>(s.tok->encode(s.separator).size());
  const int64_t need = s.max_document_tokens + sep + s.max_summary_tokens +
                       static_cast<int64_t>(end_ids(s).size());
  check_field(s.max_document_tokens >= 1 && s.max_summary_tokens >= 1, "max_document_tokens",
              " and max_summary_tokens must be >= 1");
  check_field(need <= s.model->config.max_position_embeddings, "max_document_tokens", " + ",
              "separator + max_summary_tokens + end = ", need,
              " tokens exceed the model's max_position_embeddings (",
              s.model->config.max_position_embeddings, ")");
}

class SummarizeTask : public TaskModel {
 public:
  SummarizeTask(Summarizer& s, const SummarizationData& train, const SummarizationData* val,
                int64_t val_max)
      : s_(s), grads_(s.model->layout.total) {
    auto build = [&](const std::vector<SummaryExample>& ex, size_t n, auto& toks, auto& tgts) {
      toks.resize(std::min(n, ex.size()));
      tgts.resize(toks.size());
#pragma omp parallel for schedule(dynamic, 16)
      for (size_t i = 0; i < toks.size(); ++i) summary_example(s_, ex[i], toks[i], tgts[i]);
    };
    build(train.examples, train.examples.size(), train_tokens_, train_targets_);
    if (val) build(val->examples, static_cast<size_t>(val_max), val_tokens_, val_targets_);
  }
  std::vector<ParamGroup> groups() override {
    return {{"model", &s_.model->layout, s_.model->params.data(), grads_.data()}};
  }
  int64_t train_examples() const override { return static_cast<int64_t>(train_tokens_.size()); }
  double loss_and_grads(const std::vector<int64_t>& batch, uint64_t, int64_t* tokens) override {
    std::vector<int32_t> toks, tgts;
    const int64_t T = pack(train_tokens_, train_targets_, batch, toks, tgts);
    *tokens += static_cast<int64_t>(batch.size()) * T;
    const double loss = forward(*s_.model, toks.data(), tgts.data(),
                                static_cast<int64_t>(batch.size()), T, acts_);
    if (acts_.counted > 0) backward(*s_.model, acts_, grads_.data());
    return loss;
  }
  bool has_validation() const override { return !val_tokens_.empty(); }
  Validation validate() override {
    double sum = 0;
    int64_t counted = 0;
    Activations acts;
    PassOptions pass;
    pass.keep = Keep::kNothing;
    for (size_t i = 0; i < val_tokens_.size(); i += 8) {
      std::vector<int64_t> idx;
      for (size_t j = i; j < std::min(val_tokens_.size(), i + 8); ++j) idx.push_back(static_cast<int64_t>(j));
      std::vector<int32_t> toks, tgts;
      const int64_t T = pack(val_tokens_, val_targets_, idx, toks, tgts);
      const double l = forward(*s_.model, toks.data(), tgts.data(), static_cast<int64_t>(idx.size()),
                               T, acts, {}, pass);
      sum += l * static_cast<double>(acts.counted);
      counted += acts.counted;
    }
    const double loss = counted > 0 ? sum / static_cast<double>(counted) : 0.0;
    char buf[64];
    std::snprintf(buf, sizeof buf, "val summary loss %.4f", loss);
    return {-loss, loss, buf};
  }
  void save_files(const std::string& dir) const override { save_summarizer(dir, s_); }

 private:
  // Rows padded to the longest with token 0 and target -1.
  static int64_t pack(const std::vector<std::vector<int32_t>>& all_toks,
                      const std::vector<std::vector<int32_t>>& all_tgts,
                      const std::vector<int64_t>& idx, std::vector<int32_t>& toks,
                      std::vector<int32_t>& tgts) {
    size_t T = 1;
    for (int64_t i : idx) T = std::max(T, all_toks[static_cast<size_t>(i)].size());
    toks.assign(idx.size() * T, 0);
    tgts.assign(idx.size() * T, -1);
    for (size_t b = 0; b < idx.size(); ++b) {
      const auto& a = all_toks[static_cast<size_t>(idx[b])];
      const auto& t = all_tgts[static_cast<size_t>(idx[b])];
      std::copy(a.begin(), a.end(), toks.begin() + static_cast<std::ptrdiff_t>(b * T));
      std::copy(t.begin(), t.end(), tgts.begin() + static_cast<std::ptrdiff_t>(b * T));
    }
    return static_cast<int64_t>(T);
  }
  Summarizer& s_;
  AlignedFloats grads_;
  std::vector<std::vector<int32_t>> train_tokens_, train_targets_, val_tokens_, val_targets_;
  Activations acts_;
};

nlohmann::json identity_of(const Summarizer& s, const SummarizationData& train,
                           const SummarizationData* val, int64_t val_max) {
  return {{"task", "summarize"},
          {"train", to_json_absolute(train.file)},
          {"val", val ? to_json_absolute(val->file) : nlohmann::json()},
          {"val_max", val_max},
          {"separator", s.separator},
          {"max_document_tokens", s.max_document_tokens},
          {"max_summary_tokens", s.max_summary_tokens},
          {"config", nlohmann::json::parse(config_to_json(s.model->config))}};
}

}  // namespace

Summarizer load_summarizer(const std::string& dir) {
  const std::string desc = (fs::path(dir) / Summarizer::kDescriptor).string();
  std::error_code ec;
  check(fs::exists(desc, ec), dir, " is not a summarizer (no ", Summarizer::kDescriptor,
        "); train one with `difftx summarize train --init-from ", dir, " --out NEW_DIR`");
  Summarizer s;
  try {
    const auto j = nlohmann::json::parse(read_file_text(desc));
    check(j.is_object() && j.value("format", "") == "difftx-summarizer", desc,
          ": not a difftx summarizer descriptor");
    s.separator = j.at("separator").get<std::string>();
    s.max_document_tokens = j.at("max_document_tokens").get<int64_t>();
    s.max_summary_tokens = j.at("max_summary_tokens").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    detail::fail_with(desc, ": bad summarizer descriptor (", e.what(), ")");
  }
  s.model = load_model(dir);
  s.tok = load_tokenizer(dir);
  check_fits(s);
  return s;
}

void save_summarizer(const std::string& dir, const Summarizer& s) {
  fs::create_directories(dir);
  write_model_files(dir, *s.model);
  s.tok->save(dir);
  const nlohmann::json j{{"format", "difftx-summarizer"},
                         {"separator", s.separator},
                         {"max_document_tokens", s.max_document_tokens},
                         {"max_summary_tokens", s.max_summary_tokens}};
  write_file_atomic((fs::path(dir) / Summarizer::kDescriptor).string(), j.dump(1) + "\n");
}

std::vector<int32_t> summary_prompt(const Summarizer& s, const std::string& document) {
  const std::string_view doc(document);
  auto ids = s.tok->encode(doc.substr(0, static_cast<size_t>(s.max_document_tokens) * 16));
  if (static_cast<int64_t>(ids.size()) > s.max_document_tokens)
    ids.resize(static_cast<size_t>(s.max_document_tokens));
  const auto sep = s.tok->encode(s.separator);
  ids.insert(ids.end(), sep.begin(), sep.end());
  return ids;
}

void summary_example(const Summarizer& s, const SummaryExample& e, std::vector<int32_t>& tokens,
                     std::vector<int32_t>& targets) {
  tokens = summary_prompt(s, e.document);
  const size_t prompt = tokens.size();
  auto sum = s.tok->encode(e.summary);
  if (static_cast<int64_t>(sum.size()) > s.max_summary_tokens)
    sum.resize(static_cast<size_t>(s.max_summary_tokens));
  const auto end = end_ids(s);
  tokens.insert(tokens.end(), sum.begin(), sum.end());
  tokens.insert(tokens.end(), end.begin(), end.end());
  // Position t predicts token t+1: counted from the last prompt token on.
  targets.assign(tokens.size(), -1);
  for (size_t t = prompt - 1; t + 1 < tokens.size(); ++t) targets[t] = tokens[t + 1];
}

TaskRunResult summarize_train(const SummarizeTrainRequest& r, const TaskRunObserver& obs) {
  if (r.resume) {
    const nlohmann::json stored = TaskRun::stored_identity(r.out).at("identity");
    check(stored.value("task", "") == "summarize", r.out, " is not a summarization run");
    Summarizer s = load_summarizer(r.out);
    const auto train = read_summarization_data(stored.at("train").at("path").get<std::string>());
    std::unique_ptr<SummarizationData> val;
    if (!stored.at("val").is_null())
      val = std::make_unique<SummarizationData>(
          read_summarization_data(stored.at("val").at("path").get<std::string>()));
    const int64_t val_max = stored.value("val_max", int64_t{200});
    SummarizeTask task(s, train, val.get(), val_max);
    auto run = TaskRun::resume(task, r.out, identity_of(s, train, val.get(), val_max), r.resume_steps);
    return run->train(obs);
  }
  const auto train = read_summarization_data(r.data);
  std::unique_ptr<SummarizationData> val;
  if (!r.val.empty()) val = std::make_unique<SummarizationData>(read_summarization_data(r.val));
  const int given = !r.init_from.empty() + !r.preset.empty() + !r.config.empty();
  check(given == 1, "summarize train needs exactly one of --init-from DIR (a trained language "
        "model), --preset NAME or --config FILE.json");
  Summarizer s;
  if (!r.init_from.empty()) {
    s.model = load_model(r.init_from);
    s.tok = load_tokenizer(r.init_from);
  } else {
    s.tok = make_tokenizer(r.tokenizer);
    const Config cfg = !r.preset.empty()
        ? preset_config(r.preset, s.tok->vocab_size())
        : parse_config(read_file_text(r.config), r.config, LayoutDefaults::kOfficial);
    check(cfg.vocab_size == s.tok->vocab_size(), r.config, ": vocab_size ", cfg.vocab_size,
          " differs from the tokenizer's ", s.tok->vocab_size());
    s.model = std::make_unique<Model>(cfg);
    init_parameters(*s.model, r.opts.seed);
  }
  check_field(!r.separator.empty(), "separator", " must not be empty");
  s.separator = r.separator;
  s.max_document_tokens = r.max_document_tokens;
  s.max_summary_tokens = r.max_summary_tokens;
  check_fits(s);
  SummarizeTask task(s, train, val.get(), r.val_max);
  TaskRun run(task, r.out, r.opts, identity_of(s, train, val.get(), r.val_max));
  return run.train(obs);
}

Summaries summarize_all(const Summarizer& s, const std::vector<SummaryExample>& examples,
                        const SummarizeOptions& o) {
  check_field(o.batch >= 1, "batch", " must be >= 1");
  validate(o.sampling);
  const size_t n = o.max_examples > 0 ? std::min(examples.size(), static_cast<size_t>(o.max_examples))
                                      : examples.size();
  GenerateOptions g;
  g.max_tokens = s.max_summary_tokens;
  g.sampling = o.sampling;
  g.seed = o.seed;
  if (s.tok->eos_id() < 0) g.stops = {"\n"};
  Summaries out;
  out.texts.resize(n);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; i += static_cast<size_t>(o.batch)) {
    std::vector<std::vector<int32_t>> prompts;
    for (size_t j = i; j < std::min(n, i + static_cast<size_t>(o.batch)); ++j) {
      prompts.push_back(summary_prompt(s, examples[j].document));
      out.prompt_tokens += static_cast<int64_t>(prompts.back().size());
    }
    g.seed = o.seed + i;
    const auto gen = generate(*s.model, s.tok.get(), prompts, g);
    for (size_t j = 0; j < gen.size(); ++j) {
      out.texts[i + j] = gen[j].text;
      out.generated_tokens += static_cast<int64_t>(gen[j].ids.size());
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

namespace {
nlohmann::json rouge_json(const RougeScores& r) {
  return {{"rouge1", r.rouge1}, {"rouge2", r.rouge2}, {"rougeL", r.rougeL}};
}
}  // namespace

nlohmann::json lead_eval(const std::string& data_path, int64_t k, int64_t max_examples) {
  check_field(k >= 1, "lead", " must be >= 1");
  const auto data = read_summarization_data(data_path);
  const size_t n = max_examples > 0 ? std::min(data.examples.size(), static_cast<size_t>(max_examples))
                                    : data.examples.size();
  RougeTotals lead;
  for (size_t i = 0; i < n; ++i)
    lead.add(rouge(lead_words(data.examples[i].document, k), data.examples[i].summary));
  nlohmann::json j = rouge_json(lead.mean());
  j["k"] = k;
  j["examples"] = static_cast<int64_t>(n);
  j["method"] = "lead: the first k words of the document";
  j["data"] = to_json(data.file);
  return j;
}

nlohmann::json summarize_eval(const std::string& model, const std::string& data_path,
                              const SummarizeOptions& o, int64_t lead_k) {
  const Summarizer s = load_summarizer(model);
  const auto data = read_summarization_data(data_path);
  const Summaries sum = summarize_all(s, data.examples, o);
  RougeTotals totals;
  for (size_t i = 0; i < sum.texts.size(); ++i) totals.add(rouge(sum.texts[i], data.examples[i].summary));
  nlohmann::json j{{"task", "summarize"}, {"model", model}, {"data", to_json(data.file)}};
  j.update(rouge_json(totals.mean()));
  const double n = static_cast<double>(sum.texts.size());
  j["examples"] = static_cast<int64_t>(sum.texts.size());
  j["examples_per_s"] = sum.seconds > 0 ? n / sum.seconds : 0.0;
  j["tokens_per_s"] = sum.seconds > 0
      ? static_cast<double>(sum.prompt_tokens + sum.generated_tokens) / sum.seconds : 0.0;
  j["ms_per_example"] = n > 0 ? 1000.0 * sum.seconds / n : 0.0;
  j["decoding"] = o.sampling.temperature == 0 ? "greedy" : "sampled";
  j["lead"] = lead_eval(data_path, lead_k, o.max_examples);
  j["lead"].erase("data");
  return j;
}

std::string summarize_run(const std::string& model, const std::string& data_path,
                          const SummarizeOptions& o) {
  const Summarizer s = load_summarizer(model);
  const auto data = read_summarization_data(data_path, false);
  const Summaries sum = summarize_all(s, data.examples, o);
  std::string out;
  for (const std::string& t : sum.texts) {
    // Generated bytes need not be valid UTF-8: such bytes are written as U+FFFD.
    out += nlohmann::json{{"summary", t}}.dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace) + "\n";
  }
  return out;
}

}  // namespace difftx
