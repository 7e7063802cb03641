#include "infer/kv_session.h"

#include <algorithm>

#include "core/error.h"

namespace difftx {

KvSession::KvSession(const Model& model, int64_t max_tokens, const RunOptions& opts,
                     int64_t batch)
    : model_(model),
      opts_(opts),
      cache_(model.config, max_tokens, batch),
      recompute_(model.config.ext.needs_mass()),
      history_(recompute_ ? static_cast<size_t>(batch) : 0) {}

void KvSession::recompute_last(int64_t b) {
  const std::vector<int32_t>& ids = history_[static_cast<size_t>(b)];
  PassOptions pass;
  pass.keep = Keep::kNothing;
  pass.logits = LogitRows::kLast;
  forward(model_, ids.data(), nullptr, 1, static_cast<int64_t>(ids.size()), acts_, opts_, pass);
}

const float* KvSession::prefill(int64_t b, const std::vector<int32_t>& tokens) {
  check(b >= 0 && b < cache_.sequences(), "sequence index ", b, " out of range");
  check(!tokens.empty(), "empty prompt");
  const int64_t T = static_cast<int64_t>(tokens.size());
  check(T <= capacity(), "prompt of ", T, " tokens does not fit the context of ", capacity());
  cache_.len[static_cast<size_t>(b)] = 0;
  if (recompute_) {
    history_[static_cast<size_t>(b)] = tokens;
    recompute_last(b);
    cache_.len[static_cast<size_t>(b)] = T;
    return acts_.logits.data();
  }
  PassOptions pass;
  pass.keep = Keep::kNothing;
  pass.logits = LogitRows::kLast;
  pass.cache = &cache_;
  pass.cache_rows = &b;
  forward(model_, tokens.data(), nullptr, 1, T, acts_, opts_, pass);
  return acts_.logits.data();
}

const std::vector<float>& KvSession::prefill(const std::vector<int32_t>& tokens) {
  prefill(0, tokens);
  return acts_.logits;
}

const std::vector<float>& KvSession::decode(int32_t token) {
  return decode(std::vector<int64_t>{0}, std::vector<int32_t>{token});
}

const std::vector<float>& KvSession::decode(const std::vector<int64_t>& rows,
                                            const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(rows.size());
  check(n > 0 && tokens.size() == rows.size(), "decode needs one token per sequence");
  if (recompute_) {
    const int64_t V = model_.config.vocab_size;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = rows[i];
      check(s >= 0 && s < cache_.sequences(), "sequence ", s, " is not in the session");
      for (int64_t i2 = 0; i2 < i; ++i2) check(rows[i2] != s, "sequence ", s, " appears twice");
      check(length(s) + 1 <= capacity(), "context is full: ", length(s), " + 1 tokens exceed ",
            capacity());
    }
    decoded_.resize(static_cast<size_t>(n * V));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = rows[i];
      history_[static_cast<size_t>(s)].push_back(tokens[i]);
      recompute_last(s);
      cache_.len[static_cast<size_t>(s)] += 1;
      std::copy_n(acts_.logits.data(), V, decoded_.data() + i * V);
    }
    return decoded_;
  }
  PassOptions pass;
  pass.keep = Keep::kNothing;
  pass.cache = &cache_;
  pass.cache_rows = rows.data();
  forward(model_, tokens.data(), nullptr, n, 1, acts_, opts_, pass);
  return acts_.logits;
}

}  // namespace difftx
