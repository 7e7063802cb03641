// Google Benchmark cases for the matrix-product wrapper (fp32 and bf16, the model's shapes)
// and the memory-bound kernels (RMSNorm, SwiGLU, cross-entropy), reported as GFLOP/s or GB/s.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.h"
#include "kernels/cross_entropy.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"

namespace difftx {
namespace {

std::vector<float> filled(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// Args: M, N, K, precision (0 fp32, 1 bf16), pass (0 forward Y = X W^T, 1 dX = dY W, 2 dW += dY^T X)
void BM_Linear(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const Precision p = st.range(3) ? Precision::kBF16 : Precision::kFP32;
  const auto X = filled(M * K, 1), W = filled(N * K, 2), dY = filled(M * N, 3);
  std::vector<float> Y(M * N), dX(M * K), dW(N * K);
  for (auto _ : st) {
    switch (st.range(4)) {
      case 0: linear_forward(X.data(), W.data(), Y.data(), M, N, K, p); break;
      case 1: linear_backward<float>(dY.data(), X.data(), W.data(), dX.data(), nullptr, M, N, K, false, p); break;
      default: linear_backward<float>(dY.data(), X.data(), W.data(), nullptr, dW.data(), M, N, K, false, p); break;
    }
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
// The reference config at B*T = 2048: qkv, o_proj, gate_up, down, lm_head.
BENCHMARK(BM_Linear)
    ->ArgNames({"M", "N", "K", "bf16", "pass"})
    ->ArgsProduct({{2048}, {1536}, {512}, {0, 1}, {0, 1, 2}})
    ->ArgsProduct({{2048}, {512}, {512}, {0, 1}, {0, 1, 2}})
    ->ArgsProduct({{2048}, {2816}, {512}, {0, 1}, {0, 1, 2}})
    ->ArgsProduct({{2048}, {512}, {1408}, {0, 1}, {0, 1, 2}})
    ->ArgsProduct({{2048}, {8192}, {512}, {0, 1}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_RmsNorm(benchmark::State& st) {
  const int64_t rows = st.range(0), n = st.range(1);
  const auto x = filled(rows * n, 1), w = filled(n, 2), dy = filled(rows * n, 3);
  std::vector<float> y(rows * n), inv(rows), dx(rows * n), dw(n);
  for (auto _ : st) {
    rmsnorm_forward(x.data(), w.data(), 1.f, 1e-5f, y.data(), inv.data(), rows, n);
    rmsnorm_backward(dy.data(), x.data(), w.data(), 1.f, inv.data(), dx.data(), dw.data(), rows, n);
    benchmark::ClobberMemory();
  }
  // forward reads x, writes y; backward reads dy, x, writes dx (read-modify-write)
  st.counters["GB/s"] = benchmark::Counter(6.0 * rows * n * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_RmsNorm)->Args({2048, 512})->Args({8192, 128})->UseRealTime();

void BM_SwiGlu(benchmark::State& st) {
  const int64_t rows = st.range(0), f = st.range(1);
  const auto gu = filled(rows * 2 * f, 1), da = filled(rows * f, 2);
  std::vector<float> act(rows * f), dgu(rows * 2 * f);
  for (auto _ : st) {
    swiglu_forward(gu.data(), act.data(), rows, f);
    swiglu_backward(gu.data(), da.data(), dgu.data(), rows, f);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(8.0 * rows * f * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SwiGlu)->Args({2048, 1408})->UseRealTime();

void BM_CrossEntropy(benchmark::State& st) {
  const int64_t rows = st.range(0), vocab = st.range(1);
  const auto logits = filled(rows * vocab, 1);
  std::vector<int32_t> targets(rows);
  for (int64_t r = 0; r < rows; ++r) targets[r] = static_cast<int32_t>((r * 7919) % vocab);
  std::vector<float> dlogits(rows * vocab);
  for (auto _ : st) {
    benchmark::DoNotOptimize(cross_entropy_forward(logits.data(), targets.data(), rows, vocab, nullptr));
    cross_entropy_backward(logits.data(), targets.data(), rows, vocab, 1.0, dlogits.data());
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(3.0 * rows * vocab * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CrossEntropy)->Args({2048, 8192})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace difftx
