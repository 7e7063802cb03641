#pragma once
// Throughput measurement behind `difftx bench`: training steps (forward, backward, AdamW),
// batched prefill and batch-1 decode with the KV cache on random tokens, with FLOP counts,
// the matrix-product ceiling measured in the same process, and the memory-bandwidth bound of
// decoding.
#include <cstdint>

#include "kernels/matmul.h"
#include "model/config.h"

namespace difftx {

struct ThroughputOptions {
  int64_t seq = 512, batch = 4, steps = 5, decode_tokens = 32;
  Precision precision = Precision::kFP32;
  uint64_t seed = 0;
};

struct ThroughputReport {
  double train_tokens_per_s = 0, prefill_tokens_per_s = 0, decode_tokens_per_s = 0;
  double train_step_s = 0, prefill_s = 0;
  double train_flops_per_token = 0, prefill_flops_per_token = 0;
  double train_gflops = 0, prefill_gflops = 0, matmul_ceiling_gflops = 0, mfu = 0;
  double memory_bandwidth_gbs = 0, decode_bytes_per_token = 0, decode_bound_tokens_per_s = 0;
  int64_t decode_context = 0;
  double peak_rss_mb = 0;
  int64_t parameters = 0;
};

// FLOPs of one token: matrix products (6x / 2x the matrix parameters; prefill computes the
// LM head for the last token of each sequence only) plus attention (causal, so half of the
// T x T work).
double train_flops_per_token(const Config& c, int64_t T);
double prefill_flops_per_token(const Config& c, int64_t T);

// Throws Error naming the field when a value is out of range: seq within the context,
// the decode (a prompt of max(1, seq / 2) tokens, then decode_tokens more) within
// max_position_embeddings, and a training step that fits this machine's memory.
void validate(const ThroughputOptions& o, const Config& c);

// Validates, then measures. decode_context in the report is the average context length of the
// decoded tokens (prompt + decode_tokens / 2).
ThroughputReport measure_throughput(const Config& c, const ThroughputOptions& o);

// Best-of-several GFLOP/s of one large square product in the given precision.
double measure_matmul_gflops(Precision p);
// Read bandwidth (GB/s) of a buffer far larger than the caches.
double measure_read_bandwidth_gbs();
double peak_rss_mb();

}  // namespace difftx
