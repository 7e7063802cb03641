#include "infer/generate.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "infer/kv_session.h"
#include "infer/sequence_text.h"
#include "io/tokenizer.h"

namespace difftx {
namespace {

struct Sequence {
  std::vector<int32_t> history;  // prompt + generated, for the repetition penalty and sliding
  SequenceText text;
  Rng rng{0};
};

}  // namespace

GenerationConfig read_generation_config(const std::string& path) {
  const auto j = nlohmann::json::parse(read_file_text(path), nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && j.is_object(), path, " is not a JSON object");
  GenerationConfig g;
  auto number = [&](const char* key) -> std::optional<double> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    check(j[key].is_number(), path, ": ", key, " must be a number");
    return j[key].get<double>();
  };
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const auto& e = j["eos_token_id"];
    const nlohmann::json list = e.is_array() ? e : nlohmann::json::array({e});
    for (const auto& id : list) {
      check(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (1ll << 31),
            path, ": eos_token_id must be a token id or a list of token ids");
      g.eos_ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  if (j.contains("do_sample") && !j["do_sample"].is_null()) {
    check(j["do_sample"].is_boolean(), path, ": do_sample must be true or false");
    g.do_sample = j["do_sample"].get<bool>();
  }
  g.temperature = number("temperature");
  g.top_p = number("top_p");
  g.repetition_penalty = number("repetition_penalty");
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    check(j["top_k"].is_number_integer() && j["top_k"].get<int64_t>() >= 0, path,
          ": top_k must be an integer >= 0");
    g.top_k = j["top_k"].get<int64_t>();
  }
  return g;
}

SamplingOptions sampling_from(const GenerationConfig& g) {
  SamplingOptions s;
  const bool sample = g.do_sample.value_or(false);
  s.temperature = sample ? g.temperature.value_or(1.0) : 0.0;
  s.top_k = sample ? g.top_k.value_or(50) : 0;
  s.top_p = sample ? g.top_p.value_or(1.0) : 1.0;
  s.repetition_penalty = g.repetition_penalty.value_or(1.0);
  return s;
}

std::vector<Generated> generate(const Model& model, const Tokenizer* tok,
                                const std::vector<std::vector<int32_t>>& prompts,
                                const GenerateOptions& opts, const TokenCallback& on_token) {
  const Config& c = model.config;
  validate(opts.sampling);
  check_field(opts.max_tokens >= 0, "max_tokens", " must be >= 0");
  check(!prompts.empty(), "no prompt given");
  for (const auto& s : opts.stops) check_field(!s.empty(), "stop", " strings must not be empty");
  int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    check(!prompts[i].empty(), "prompt ", i + 1, " is empty");
    for (int32_t id : prompts[i])
      check(id >= 0 && id < c.vocab_size, "token id ", id, " is out of range [0, ", c.vocab_size,
            ")");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[i].size()));
  }
  const int64_t ctx = c.max_position_embeddings;
  if (!opts.sliding_window) {
    check_field(opts.max_tokens <= ctx - longest, "max_tokens", " (", opts.max_tokens,
                ") plus the longest prompt (", longest, " tokens) exceed the model's context of ",
                ctx, " tokens; lower it, shorten the prompt or use a sliding window");
  } else {
    check(longest <= ctx, "a prompt of " + std::to_string(longest) +
                              " tokens exceeds the model's context of " + std::to_string(ctx));
  }
  // Only ids the tokenizer can print are sampled: a model whose vocabulary is larger than its
  // tokenizer's (padding rows, a config with a rounded vocab_size) never emits the extra ids.
  const int64_t sample_vocab = tok ? std::min<int64_t>(c.vocab_size, tok->vocab_size()) : c.vocab_size;
  const int64_t B = static_cast<int64_t>(prompts.size());
  const int64_t cap = std::min(ctx, longest + opts.max_tokens + 1);
  KvSession session(model, std::max<int64_t>(cap, 1), opts.run, B);
  std::vector<Sequence> seqs;
  std::vector<float> first_logits(static_cast<size_t>(B * c.vocab_size));
  for (int64_t b = 0; b < B; ++b) {
    seqs.push_back({prompts[b], SequenceText(tok, opts.stops, opts.eos_ids, opts.max_tokens),
                    Rng(opts.seed + static_cast<uint64_t>(b))});
    Sequence& s = seqs.back();
    const float* lg = session.prefill(b, prompts[b]);
    std::copy(lg, lg + c.vocab_size, first_logits.begin() + b * c.vocab_size);
    if (opts.max_tokens == 0) s.text.finish("length");
  }

  // Accepts `id` for sequence b: checks eos, decodes, checks stops, streams.
  auto accept = [&](int64_t b, int32_t id) {
    Sequence& s = seqs[b];
    const size_t before = s.text.out().ids.size();
    const std::string ready = s.text.accept(id);
    if (s.text.out().ids.size() == before) return;  // the end-of-text id
    s.history.push_back(id);
    if (on_token) on_token(b, ready, id);
  };

  for (int64_t b = 0; b < B; ++b)
    if (!seqs[b].text.done())
      accept(b, sample_token(first_logits.data() + b * c.vocab_size, sample_vocab,
                             seqs[b].history, opts.sampling, seqs[b].rng));
  while (true) {
    std::vector<int64_t> rows;
    std::vector<int32_t> next;
    for (int64_t b = 0; b < B; ++b) {
      Sequence& s = seqs[b];
      if (s.text.done()) continue;
      if (session.length(b) >= session.capacity()) {  // only with sliding_window
        const int64_t keep = std::max<int64_t>(2, session.capacity() / 2);
        std::vector<int32_t> tail(s.history.end() - keep, s.history.end());
        session.prefill(b, std::vector<int32_t>(tail.begin(), tail.end() - 1));
      }
      rows.push_back(b);
      next.push_back(s.history.back());
    }
    if (rows.empty()) break;
    const std::vector<float>& logits = session.decode(rows, next);
    for (size_t i = 0; i < rows.size(); ++i) {
      Sequence& s = seqs[rows[i]];
      accept(rows[i], sample_token(logits.data() + i * c.vocab_size, sample_vocab, s.history,
                                   opts.sampling, s.rng));
    }
  }
  std::vector<Generated> out;
  for (auto& s : seqs) out.push_back(s.text.take());
  return out;
}

}  // namespace difftx
