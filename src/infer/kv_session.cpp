#include "infer/kv_session.h"

#include "core/error.h"

namespace difftx {

KvSession::KvSession(const Model& model, int64_t max_tokens, const RunOptions& opts,
                     int64_t batch)
    : model_(model), opts_(opts), cache_(model.config, max_tokens, batch) {}

const float* KvSession::prefill(int64_t b, const std::vector<int32_t>& tokens) {
  check(b >= 0 && b < cache_.sequences(), "sequence index ", b, " out of range");
  check(!tokens.empty(), "empty prompt");
  const int64_t T = static_cast<int64_t>(tokens.size());
  check(T <= capacity(), "prompt of ", T, " tokens does not fit the context of ", capacity());
  cache_.len[static_cast<size_t>(b)] = 0;
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
  PassOptions pass;
  pass.keep = Keep::kNothing;
  pass.cache = &cache_;
  pass.cache_rows = rows.data();
  forward(model_, tokens.data(), nullptr, n, 1, acts_, opts_, pass);
  return acts_.logits;
}

}  // namespace difftx
