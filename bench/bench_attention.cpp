// Causal attention kernels: the fused flash kernel (forward, forward + backward) and the
// reference T x T kernel, in the reference config's heads (hidden 512, 8 sub-heads of d = 64):
//   diff: Pq = Pk = 4 differential heads, ncomp = 2, dv = 128    (Args {T, 1})
//   std:  Pq = Pk = 8 heads, ncomp = 1, dv = 64                  (Args {T, 0})
// batch 1. Run:  build/bench/difftx_bench_kernels --benchmark_filter=Flash
//
// FLOPs counted (2 per multiply-add, causal: only the P = T (T + 1) / 2 query-key pairs with
// key <= query, per query head):
//   forward   ncomp * P * 2 (d + dv)              S = Q K^T and O_c = P_c V for each map
//   backward  P * 2 (3 ncomp d + 2 dv)            S recomputed, dQ, dK for each map; dP = dO V^T
//                                                 and dV once (both maps share V, so
//                                                 dP_c = coef_c dP and dV = (P1 - lambda P2)^T dO)
// For standard attention that is the usual 2 + 5 GEMMs. Work the kernel does beyond that
// (masked halves of diagonal tiles, exp, packing) is not counted.
// The "GFLOP" counter is that count per second (shown as GFLOP=x/s); "extra_MB" the kernel's
// extra memory (flash: saved state + scratch; reference: its T x T probabilities).
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/flash_attention.h"

#include <omp.h>

namespace difftx {
namespace {

HeadGeometry dims_for(int64_t T, bool diff) {
  HeadGeometry s;
  s.B = 1, s.T = T, s.d = 64;
  s.ncomp = diff ? 2 : 1;
  s.Pq = s.Pk = diff ? 4 : 8;
  return s;
}

double pairs(const HeadGeometry& s) { return static_cast<double>(s.T) * (s.T + 1) / 2.0; }
double fwd_flops(const HeadGeometry& s) {
  return static_cast<double>(s.B * s.Pq) * s.ncomp * pairs(s) * 2.0 * (s.d + s.dv());
}
double bwd_flops(const HeadGeometry& s) {
  return static_cast<double>(s.B * s.Pq) * pairs(s) * 2.0 * (3.0 * s.ncomp * s.d + 2.0 * s.dv());
}

struct Inputs {
  std::vector<float> Q, K, V, O, dO, dQ, dK, dV;
  explicit Inputs(const HeadGeometry& s) {
    Rng rng(42);
    auto fill = [&](std::vector<float>& x, int64_t n) {
      x.resize(static_cast<size_t>(n));
      for (auto& e : x) e = static_cast<float>(rng.normal());
    };
    fill(Q, s.B * s.Pq * s.ncomp * s.T * s.d);
    fill(K, s.B * s.Pk * s.ncomp * s.T * s.d);
    fill(V, s.B * s.Pk * s.T * s.dv());
    fill(dO, s.B * s.T * s.Pq * s.dv());
    O.resize(dO.size()), dQ.resize(Q.size()), dK.resize(K.size()), dV.resize(V.size());
  }
};

void set_counters(benchmark::State& state, const HeadGeometry& s, double flops, bool backward) {
  state.counters["GFLOP"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["extra_MB"] = static_cast<double>(flash_attention_extra_bytes(s, omp_get_max_threads())) / 1e6;
  state.counters["backward"] = backward ? 1 : 0;
  state.SetLabel(s.ncomp == 2 ? "diff" : "std");
}

void BM_FlashForward(benchmark::State& state) {
  const HeadGeometry s = dims_for(state.range(0), state.range(1) != 0);
  Inputs in(s);
  FlashSaved saved;
  for (auto _ : state) {
    flash_attention_forward(s, in.Q.data(), in.K.data(), in.V.data(), 0.5f, in.O.data(), saved);
    benchmark::DoNotOptimize(in.O.data());
  }
  set_counters(state, s, fwd_flops(s), false);
}

void BM_FlashForwardBackward(benchmark::State& state) {
  const HeadGeometry s = dims_for(state.range(0), state.range(1) != 0);
  Inputs in(s);
  FlashSaved saved;
  for (auto _ : state) {
    flash_attention_forward(s, in.Q.data(), in.K.data(), in.V.data(), 0.5f, in.O.data(), saved);
    const float dl = flash_attention_backward(s, in.Q.data(), in.K.data(), in.V.data(), 0.5f,
                                              saved, in.dO.data(), in.dQ.data(), in.dK.data(),
                                              in.dV.data());
    benchmark::DoNotOptimize(dl);
    benchmark::DoNotOptimize(in.dQ.data());
  }
  set_counters(state, s, fwd_flops(s) + bwd_flops(s), true);
}

// The reference keeps B * Pq * ncomp * T * T probabilities and accumulates in double.
void BM_ReferenceForwardBackward(benchmark::State& state) {
  const HeadGeometry s = dims_for(state.range(0), state.range(1) != 0);
  Inputs in(s);
  AttentionSaved<float> saved;
  for (auto _ : state) {
    attention_forward_reference<float>(s, in.Q.data(), in.K.data(), in.V.data(), 0.5f,
                                       in.O.data(), saved);
    const float dl = attention_backward_reference<float>(s, in.Q.data(), in.K.data(),
                                                         in.V.data(), 0.5f, saved, in.dO.data(),
                                                         in.dQ.data(), in.dK.data(),
                                                         in.dV.data());
    benchmark::DoNotOptimize(dl);
  }
  state.counters["GFLOP"] = benchmark::Counter((fwd_flops(s) + bwd_flops(s)) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["extra_MB"] =
      static_cast<double>(s.B * s.Pq * s.ncomp * s.T * s.T * sizeof(float)) / 1e6;
  state.SetLabel(s.ncomp == 2 ? "diff" : "std");
}

void flash_args(benchmark::internal::Benchmark* b) {
  for (int64_t diff : {1, 0})
    for (int64_t T : {512, 2048, 4096}) b->Args({T, diff});
  b->ArgNames({"T", "diff"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_FlashForward)->Apply(flash_args);
BENCHMARK(BM_FlashForwardBackward)->Apply(flash_args);
BENCHMARK(BM_ReferenceForwardBackward)
    ->Args({512, 1})
    ->Args({512, 0})
    ->ArgNames({"T", "diff"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace difftx
