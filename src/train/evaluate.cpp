#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "io/tokenizer.h"
#include "model/transformer.h"

namespace difftx {

EvalResult evaluate_stream(const Model& model, const Tokenizer& tok, const TokenData& data,
                           int64_t T, int64_t batch, int64_t max_tokens, Precision precision) {
  check(data.size() >= 2, "evaluation data needs at least 2 tokens");
  check(T >= 1 && T <= model.config.max_position_embeddings,
        "--seq must be in [1, max_position_embeddings]");
  for (int64_t i = 0; i < data.size(); ++i)
    check(data.at(i) < model.config.vocab_size,
          "the data holds token id " + std::to_string(data.at(i)) +
              " beyond the model's vocabulary; was it tokenised for another model?");
  // Bytes of text each id stands for (byte-level and BPE tokens decode independently; the
  // end-of-text separator stands for none).
  std::vector<int64_t> id_bytes(static_cast<size_t>(model.config.vocab_size), 0);
  for (int64_t id = 0; id < std::min<int64_t>(tok.vocab_size(), model.config.vocab_size); ++id)
    if (id != tok.eos_id()) {
      DecodeState mid_text;  // as inside a text, so no leading space is dropped
      mid_text.at_start = false;
      mid_text.any_output = true;
      std::string bytes;
      tok.decode_append(static_cast<int32_t>(id), mid_text, bytes);
      id_bytes[id] = static_cast<int64_t>(bytes.size());
    }

  const int64_t predictable = data.size() - 1;
  const int64_t total = max_tokens > 0 ? std::min(max_tokens, predictable) : predictable;
  const int64_t n_windows = (total + T - 1) / T;
  RunOptions run;
  run.precision = precision;
  EvalResult r;
  double nll = 0;
  Activations acts;
  std::vector<int32_t> in, tg;
  for (int64_t w0 = 0; w0 < n_windows; w0 += batch) {
    const int64_t nb = std::min(batch, n_windows - w0);
    in.assign(static_cast<size_t>(nb * T), 0);
    tg.assign(in.size(), -1);  // the last window may be short: padded targets do not count
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t start = (w0 + b) * T;
      for (int64_t t = 0; t < T && start + t < total; ++t) {
        in[b * T + t] = data.at(start + t);
        tg[b * T + t] = data.at(start + t + 1);
        r.bytes += id_bytes[data.at(start + t + 1)];
      }
    }
    const double mean = forward(model, in.data(), tg.data(), nb, T, acts, run);
    nll += mean * static_cast<double>(acts.counted);
    r.tokens += acts.counted;
  }
  r.loss = nll / static_cast<double>(r.tokens);
  r.perplexity = std::exp(r.loss);
  r.bits_per_byte = r.bytes > 0 ? nll / std::log(2.0) / static_cast<double>(r.bytes) : 0;
  return r;
}

}  // namespace difftx
