#include "perf/throughput.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/memory_limit.h"
#include "core/rng.h"
#include "infer/kv_session.h"
#include "model/extensions.h"
#include "model/params.h"
#include "model/transformer.h"
#include "train/adamw.h"

namespace difftx {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double matrix_params(const Config& c) {
  const double C = static_cast<double>(c.hidden_size), F = static_cast<double>(c.intermediate_size);
  const double qkv = static_cast<double>(c.q_width() + 2 * c.kv_width());
  const double lambda_proj = c.is_diff_v2() ? static_cast<double>(c.num_attention_heads) * C : 0;
  const double per_layer =
      C * qkv + static_cast<double>(c.o_width()) * C + lambda_proj + 3.0 * C * F;
  return static_cast<double>(c.num_hidden_layers) * per_layer +
         static_cast<double>(c.vocab_size) * C;  // the LM head is a matrix product even when tied
}
double attention_fwd_flops_per_token(const Config& c, int64_t T) {
  // QK^T over the query sub-heads (q_width in all) and PV over the same total width (V1: half
  // the heads, twice as wide; V2: every sub-head), each 2 FLOPs per multiply-add, over T/2
  // keys on average (causal).
  return static_cast<double>(c.num_hidden_layers) * 2.0 * 2.0 * static_cast<double>(T) / 2.0 *
         static_cast<double>(c.q_width());
}
}  // namespace

double train_flops_per_token(const Config& c, int64_t T) {
  return 6.0 * matrix_params(c) + 3.0 * attention_fwd_flops_per_token(c, T);
}
double prefill_flops_per_token(const Config& c, int64_t T) {
  // The LM head runs once per sequence (the last token's logits), not once per token.
  const double lm_head = static_cast<double>(c.vocab_size) * static_cast<double>(c.hidden_size);
  return 2.0 * (matrix_params(c) - lm_head) + 2.0 * lm_head / static_cast<double>(T) +
         attention_fwd_flops_per_token(c, T);
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double measure_matmul_gflops(Precision p) {
  const int64_t n = 1536;
  std::vector<float> A(static_cast<size_t>(n * n), 0.5f), B(A.size(), 0.25f), C(A.size());
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const auto t0 = Clock::now();
    gemm<float>(false, true, n, n, n, 1.f, A.data(), n, B.data(), n, 0.f, C.data(), n, p);
    if (rep > 0) best = std::max(best, 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
}

double measure_read_bandwidth_gbs() {
  const size_t n = size_t(1) << 26;  // 256 MiB
  AlignedFloats buf(n);
  for (size_t i = 0; i < n; ++i) buf.data()[i] = 1.f;
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = Clock::now();
    double sum = 0;
    const float* p = buf.data();
#pragma omp parallel for simd reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < n; ++i) sum += p[i];
    const double s = seconds_since(t0);
    if (sum != static_cast<double>(n)) return 0;  // keeps the loop from being optimised away
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  return best;
}

namespace {
// The decode benchmark's prompt: half the training window (at least one token).
int64_t decode_prompt_tokens(int64_t T) { return std::max<int64_t>(1, T / 2); }

// Floats that a training step over M = B x T tokens keeps at least: the weights, their
// gradients and both AdamW moments, the activations each layer keeps for backward, and the
// logits with their gradient. A lower bound: what cannot hold this is refused before starting.
uint128 training_bytes_lower_bound(const Config& c, int64_t M) {
  const uint128 C = uint128(c.hidden_size), F = uint128(c.intermediate_size);
  const uint128 per_token_layer = 4 * C + uint128(c.q_width()) * 2 + 2 * uint128(c.kv_width()) + 3 * F;
  const uint128 per_token = uint128(c.num_hidden_layers) * per_token_layer + 2 * uint128(c.vocab_size);
  return (4 * uint128(make_layout(c).total) + uint128(M) * per_token) * sizeof(float);
}
}  // namespace

void validate(const ThroughputOptions& o, const Config& c) {
  check_field(o.seq >= 1 && o.seq <= c.max_position_embeddings, "seq", " must be in [1, ",
              c.max_position_embeddings, "] (max_position_embeddings), got ", o.seq);
  ext_check_seq(c, o.seq);
  check_field(o.batch >= 1 && o.batch <= 4096, "batch", " must be in [1, 4096], got ", o.batch);
  check_field(o.steps >= 1 && o.steps <= 100000, "steps", " must be in [1, 100000], got ", o.steps);
  const int64_t prompt = decode_prompt_tokens(o.seq);
  check_field(o.decode_tokens >= 0 && o.decode_tokens <= c.max_position_embeddings - prompt,
              "decode_tokens", " = ", o.decode_tokens, " after a prompt of ", prompt,
              " tokens (half of seq, at least 1) must be in [0, ", c.max_position_embeddings - prompt,
              "] so that the decode fits max_position_embeddings = ", c.max_position_embeddings,
              "; lower decode_tokens or seq");
  check_fits_in_memory(training_bytes_lower_bound(c, o.seq * o.batch),
                       "a training step of batch " + std::to_string(o.batch) + " x seq " +
                           std::to_string(o.seq),
                       "lower the batch or the sequence length");
}

ThroughputReport measure_throughput(const Config& c, const ThroughputOptions& o) {
  validate(o, c);
  ThroughputReport r;
  const int64_t B = o.batch, T = o.seq, M = B * T;
  Model model(c);
  init_parameters(model, o.seed);
  r.parameters = static_cast<int64_t>(model.layout.num_parameters());
  Rng rng(o.seed + 1);
  std::vector<int32_t> tokens(static_cast<size_t>(M));
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size)));
  const auto targets = next_token_targets(tokens, B, T);
  RunOptions run;
  run.precision = o.precision;

  // Training: forward, backward, AdamW. One warm-up step, then the median of `steps`.
  {
    AlignedFloats grads(model.layout.total);
    AdamW opt(model.layout, AdamWConfig{});
    Activations acts;
    std::vector<double> times;
    for (int64_t s = 0; s <= o.steps; ++s) {
      const auto t0 = Clock::now();
      grads.zero();
      forward(model, tokens.data(), targets.data(), B, T, acts, run);
      backward(model, acts, grads.data());
      opt.step(model.params.data(), grads.data(), 1e-4);
      if (s > 0) times.push_back(seconds_since(t0));
    }
    r.train_step_s = median(times);
  }
  // Prefill: an inference pass over the batch that fills a KV cache, keeps no activations
  // and computes the logits of each sequence's last token.
  {
    Activations acts;
    KvCache cache(c, T, B);
    PassOptions pass;
    pass.keep = Keep::kNothing;
    pass.logits = LogitRows::kLast;
    // Extensions that read the attention mass cannot be cached (infer/kv_session.h).
    pass.cache = c.ext.needs_mass() ? nullptr : &cache;
    std::vector<double> times;
    for (int64_t s = 0; s <= o.steps; ++s) {
      std::fill(cache.len.begin(), cache.len.end(), 0);
      const auto t0 = Clock::now();
      forward(model, tokens.data(), nullptr, B, T, acts, run, pass);
      if (s > 0) times.push_back(seconds_since(t0));
    }
    r.prefill_s = median(times);
  }
  // Decode at batch 1 after a prompt of T/2 tokens (the start of the first training window),
  // feeding random ids of its own: the batch holds only B x T tokens, fewer than
  // prompt + decode_tokens when --seq is small.
  {
    const int64_t prompt = decode_prompt_tokens(T);
    const int64_t n_new = o.decode_tokens;  // validate() keeps prompt + n_new in the context
    std::vector<int32_t> fed(static_cast<size_t>(n_new));
    for (auto& t : fed) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size)));
    KvSession session(model, std::min(c.max_position_embeddings, prompt + std::max<int64_t>(n_new, 1)), run);
    session.prefill({tokens.begin(), tokens.begin() + prompt});
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n_new; ++i) session.decode(fed[static_cast<size_t>(i)]);
    r.decode_tokens_per_s = n_new > 0 ? static_cast<double>(n_new) / seconds_since(t0) : 0;
    r.decode_context = prompt + n_new / 2;
    // Bytes read per decoded token: every weight once plus the average cached K and V.
    const double kv_bytes = 2.0 * static_cast<double>(c.num_hidden_layers * c.kv_width()) *
                            static_cast<double>(r.decode_context) * sizeof(float);
    r.decode_bytes_per_token = static_cast<double>(model.layout.num_parameters()) * sizeof(float) + kv_bytes;
  }
  r.train_tokens_per_s = static_cast<double>(M) / r.train_step_s;
  r.prefill_tokens_per_s = static_cast<double>(M) / r.prefill_s;
  r.train_flops_per_token = train_flops_per_token(c, T);
  r.prefill_flops_per_token = prefill_flops_per_token(c, T);
  r.train_gflops = r.train_tokens_per_s * r.train_flops_per_token / 1e9;
  r.prefill_gflops = r.prefill_tokens_per_s * r.prefill_flops_per_token / 1e9;
  r.matmul_ceiling_gflops = measure_matmul_gflops(o.precision);
  r.mfu = r.matmul_ceiling_gflops > 0 ? r.train_gflops / r.matmul_ceiling_gflops : 0;
  r.memory_bandwidth_gbs = measure_read_bandwidth_gbs();
  r.decode_bound_tokens_per_s = r.memory_bandwidth_gbs * 1e9 / r.decode_bytes_per_token;
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

}  // namespace difftx
