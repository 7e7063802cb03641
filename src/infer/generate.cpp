#include "infer/generate.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "infer/kv_session.h"
#include "io/tokenizer.h"

namespace difftx {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of some stop string: those
// bytes might still become a stop, so they are held back.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t keep = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > keep; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  return keep;
}

struct Sequence {
  std::vector<int32_t> history;  // prompt + generated, for the repetition penalty and sliding
  Generated out;
  std::unique_ptr<StreamingDecoder> decoder;
  std::string pending;  // decoded text not yet emitted
  size_t emitted = 0;   // bytes of out.text already passed to the callback
  Rng rng{0};
  bool done = false;
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
  std::vector<Sequence> seqs(static_cast<size_t>(B));
  std::vector<float> first_logits(static_cast<size_t>(B * c.vocab_size));
  for (int64_t b = 0; b < B; ++b) {
    Sequence& s = seqs[b];
    s.history = prompts[b];
    s.rng = Rng(opts.seed + static_cast<uint64_t>(b));
    if (tok) s.decoder = std::make_unique<StreamingDecoder>(*tok);
    const float* lg = session.prefill(b, prompts[b]);
    std::copy(lg, lg + c.vocab_size, first_logits.begin() + b * c.vocab_size);
    s.done = opts.max_tokens == 0;
    if (s.done) s.out.finish_reason = "length";
  }

  // Accepts `id` for sequence b: checks eos, decodes, checks stops, streams.
  auto accept = [&](int64_t b, int32_t id) {
    Sequence& s = seqs[b];
    const bool eos = opts.eos_ids.empty()
                         ? tok && id == tok->eos_id()
                         : std::find(opts.eos_ids.begin(), opts.eos_ids.end(), id) != opts.eos_ids.end();
    if (eos) {
      s.done = true;
      s.out.finish_reason = "eos";
    } else {
      s.out.ids.push_back(id);
      s.history.push_back(id);
      if (s.decoder) {
        s.pending += s.decoder->push(id);
        for (const auto& stop : opts.stops) {
          const size_t at = s.pending.find(stop);
          if (at != std::string::npos) {
            s.pending.resize(at);
            s.done = true;
            s.out.finish_reason = "stop";
          }
        }
        if (!s.done && static_cast<int64_t>(s.out.ids.size()) >= opts.max_tokens)
          s.pending += s.decoder->finish();
        const size_t hold = s.done || static_cast<int64_t>(s.out.ids.size()) >= opts.max_tokens
                                ? 0
                                : held_back(s.pending, opts.stops);
        const std::string ready = s.pending.substr(0, s.pending.size() - hold);
        s.pending.erase(0, ready.size());
        s.out.text += ready;
        if (on_token) on_token(b, ready, id);
      } else if (on_token) {
        on_token(b, "", id);
      }
      if (!s.done && static_cast<int64_t>(s.out.ids.size()) >= opts.max_tokens) {
        s.done = true;
        s.out.finish_reason = "length";
      }
    }
  };

  for (int64_t b = 0; b < B; ++b)
    if (!seqs[b].done)
      accept(b, sample_token(first_logits.data() + b * c.vocab_size, sample_vocab,
                             seqs[b].history, opts.sampling, seqs[b].rng));
  while (true) {
    std::vector<int64_t> rows;
    std::vector<int32_t> next;
    for (int64_t b = 0; b < B; ++b) {
      Sequence& s = seqs[b];
      if (s.done) continue;
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
  for (auto& s : seqs) out.push_back(std::move(s.out));
  return out;
}

}  // namespace difftx
