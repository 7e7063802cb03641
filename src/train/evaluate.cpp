#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "io/tokenizer.h"
#include "kernels/cross_entropy.h"
#include "model/transformer.h"

namespace difftx {
namespace {
// Bytes of text each id stands for (byte-level and BPE tokens decode independently; the
// end-of-text separator stands for none).
std::vector<int64_t> bytes_per_id(const Tokenizer& tok, int64_t vocab) {
  std::vector<int64_t> id_bytes(static_cast<size_t>(vocab), 0);
  for (int64_t id = 0; id < std::min<int64_t>(tok.vocab_size(), vocab); ++id)
    if (id != tok.eos_id()) {
      DecodeState mid_text;  // as inside a text, so no leading space is dropped
      mid_text.at_start = false;
      mid_text.any_output = true;
      std::string bytes;
      tok.decode_append(static_cast<int32_t>(id), mid_text, bytes);
      id_bytes[id] = static_cast<int64_t>(bytes.size());
    }
  return id_bytes;
}
}  // namespace

void ar_hit_flags(const int32_t* in, const int32_t* target, int64_t T, uint8_t* hit) {
  std::unordered_set<uint64_t> seen;  // bigrams (in[s], target[s]) of the positions before t
  const auto key = [](int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  };
  for (int64_t t = 0; t < T; ++t) {
    hit[t] = target[t] >= 0 && seen.count(key(in[t], target[t])) > 0;
    if (target[t] >= 0) seen.insert(key(in[t], target[t]));
  }
}

EvalResult evaluate_loss(const Model& model, const TokenData& data, const EvalSpec& spec,
                         const Tokenizer* tok) {
  const int64_t max_pos = model.config.max_position_embeddings;
  check_field(spec.seq >= 1 && spec.seq <= max_pos, "seq", " must be in [1, ", max_pos,
              "] (max_position_embeddings), got ", spec.seq);
  check_field(spec.batch >= 1 && spec.batch <= 4096, "batch", " must be in [1, 4096], got ",
              spec.batch);
  check_field(spec.max_tokens >= 0, "max_tokens", " must be >= 0 (0: all), got ", spec.max_tokens);
  check(data.size() >= 2, "evaluation data needs at least 2 tokens, it has ", data.size());
  const int64_t predictable = data.size() - 1;
  const int64_t total = spec.max_tokens > 0 ? std::min(spec.max_tokens, predictable) : predictable;
  const int64_t vocab = model.config.vocab_size;
  for (int64_t i = 0; i <= total; ++i)
    check(data.at(i) >= 0 && data.at(i) < vocab, "the data holds token id ", data.at(i),
          " beyond the model's vocabulary of ", vocab, "; was it tokenised for another model?");
  const std::vector<int64_t> id_bytes = tok ? bytes_per_id(*tok, vocab) : std::vector<int64_t>();

  const int64_t T = spec.seq, n_windows = (total + T - 1) / T;
  RunOptions run;
  run.precision = spec.precision;
  run.attention_logit_bits = spec.attention_logit_bits;
  PassOptions pass;
  pass.keep = Keep::kNothing;  // a loss needs every logit, backward nothing
  EvalResult r;
  double nll = 0, hit_nll = 0;
  Activations acts;
  std::vector<int32_t> in, tg, hit_tg;
  std::vector<uint8_t> hit(static_cast<size_t>(T));
  for (int64_t w0 = 0; w0 < n_windows; w0 += spec.batch) {
    const int64_t nb = std::min(spec.batch, n_windows - w0);
    in.assign(static_cast<size_t>(nb * T), 0);
    tg.assign(in.size(), -1);  // the last window may be short: padded targets do not count
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t start = (w0 + b) * T;
      for (int64_t t = 0; t < T && start + t < total; ++t) {
        in[b * T + t] = data.at(start + t);
        tg[b * T + t] = data.at(start + t + 1);
        if (tok) r.bytes += id_bytes[data.at(start + t + 1)];
      }
    }
    const double mean = forward(model, in.data(), tg.data(), nb, T, acts, run, pass);
    nll += mean * static_cast<double>(acts.counted);
    r.tokens += acts.counted;
    if (spec.split_ar_hit) {  // the same logits, scored on the AR-Hit targets alone
      hit_tg.assign(tg.size(), -1);
      for (int64_t b = 0; b < nb; ++b) {
        ar_hit_flags(in.data() + b * T, tg.data() + b * T, T, hit.data());
        for (int64_t t = 0; t < T; ++t)
          if (hit[static_cast<size_t>(t)]) hit_tg[b * T + t] = tg[b * T + t];
      }
      int64_t counted = 0;
      const double hit_mean =
          cross_entropy_forward(acts.logits.data(), hit_tg.data(), nb * T, vocab, &counted);
      hit_nll += hit_mean * static_cast<double>(counted);
      r.ar_hit_tokens += counted;
    }
  }
  r.loss = nll / static_cast<double>(r.tokens);
  if (spec.split_ar_hit) {
    r.ar_hit_loss = r.ar_hit_tokens > 0 ? hit_nll / static_cast<double>(r.ar_hit_tokens) : 0;
    const int64_t others = r.tokens - r.ar_hit_tokens;
    r.other_loss = others > 0 ? (nll - hit_nll) / static_cast<double>(others) : 0;
  }
  r.perplexity = std::exp(r.loss);
  r.bits_per_byte = r.bytes > 0 ? nll / std::log(2.0) / static_cast<double>(r.bytes) : 0;
  return r;
}

}  // namespace difftx
