#include "kernels/matmul.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"

namespace difftx {

template <class F>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, F alpha,
                    const F* A, int64_t lda, const F* B, int64_t ldb, F beta, F* C,
                    int64_t ldc) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const F a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const F b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += static_cast<double>(a) * static_cast<double>(b);
      }
      F& c = C[i * ldc + j];
      c = static_cast<F>(alpha * acc + (beta == F(0) ? 0.0 : static_cast<double>(beta) * c));
    }
  }
}

float round_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;  // NaN stays NaN
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

namespace {
using dnnl::memory;

struct Dnnl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};
Dnnl& dnnl_state() {
  static Dnnl d;
  return d;
}

// One cached primitive per distinct call shape.
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float,
                       bool, bool>;

struct Cached {
  dnnl::matmul prim;
  memory::desc a, b, c;
};

Cached make_primitive(const Key& k) {
  const auto [ta, tb, M, N, K, lda, ldb, ldc, alpha, accumulate, bf16] = k;
  const auto in_t = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  // Row-major with leading dimensions; a transposed operand is just other strides.
  memory::desc a({M, K}, in_t, ta ? memory::dims{1, lda} : memory::dims{lda, 1});
  memory::desc b({K, N}, in_t, tb ? memory::dims{1, ldb} : memory::dims{ldb, 1});
  memory::desc c({M, N}, memory::data_type::f32, memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, dnnl_state().engine);
  return {dnnl::matmul(pd), a, b, c};
}

const Cached& primitive_for(const Key& k) {
  static std::mutex mu;
  static std::map<Key, Cached> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(k);
  if (it == cache.end()) it = cache.emplace(k, make_primitive(k)).first;
  return it->second;
}

// Copies a strided [rows, cols] float view into a dense bf16 buffer with the same strides.
void to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, bool trans,
             std::vector<uint16_t>& dst) {
  // Physical extent: trans means the stored matrix is [cols, ld-strided rows].
  const int64_t outer = trans ? cols : rows, inner = trans ? rows : cols;
  dst.resize(static_cast<size_t>((outer - 1) * ld + inner));
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      uint32_t u;
      const float r = round_to_bf16(src[o * ld + i]);
      std::memcpy(&u, &r, 4);
      dst[static_cast<size_t>(o * ld + i)] = static_cast<uint16_t>(u >> 16);
    }
}

// A strided [rows, cols] float view rounded to bf16 values, kept as floats with the same strides.
void to_bf16_floats(const float* src, int64_t rows, int64_t cols, int64_t ld, bool trans,
                    std::vector<float>& dst) {
  const int64_t outer = trans ? cols : rows, inner = trans ? rows : cols;
  dst.resize(static_cast<size_t>((outer - 1) * ld + inner));
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      dst[static_cast<size_t>(o * ld + i)] = round_to_bf16(src[o * ld + i]);
}

// Y[M,N] = X[M,K] W[N,K]^T for a few rows (decoding): memory-bound, so the point is to stream
// each weight row once for all M rows, split over threads by weight rows.
void gemm_few_rows(int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx, const float* W,
                   int64_t ldw, float* Y, int64_t ldy) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* w = W + n * ldw;
    for (int64_t m = 0; m < M; ++m) {
      const float* x = X + m * ldx;
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (int64_t k = 0; k < K; ++k) acc += x[k] * w[k];
      Y[m * ldy + n] = acc;
    }
  }
}
}  // namespace

bool bf16_matmul_native() {
  static const bool native = [] {
    try {
      make_primitive(Key{false, false, 8, 8, 8, 8, 8, 8, 1.f, false, true});
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return native;
}

template <>
void gemm<float>(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc, Precision precision) {
  if (M == 0 || N == 0) return;
  if (M <= 4 && !trans_a && trans_b && alpha == 1.f && beta == 0.f && K > 0 &&
      precision == Precision::kFP32) {
    gemm_few_rows(M, N, K, A, lda, B, ldb, C, ldc);
    return;
  }
  if (K == 0 || (beta != 0.f && beta != 1.f)) {  // rare shapes: the plain loop
    gemm_reference<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (precision == Precision::kBF16 && !bf16_matmul_native()) {
    // No bf16 products in oneDNN on this CPU: the same bf16-rounded operands, multiplied and
    // accumulated in f32 (what a native bf16 product computes, at the f32 rate).
    thread_local std::vector<float> a16, b16;
    to_bf16_floats(A, M, K, lda, trans_a, a16);
    to_bf16_floats(B, K, N, ldb, trans_b, b16);
    gemm<float>(trans_a, trans_b, M, N, K, alpha, a16.data(), lda, b16.data(), ldb, beta, C, ldc,
                Precision::kFP32);
    return;
  }
  const bool bf16 = precision == Precision::kBF16;
  const Key key{trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta == 1.f, bf16};
  const Cached& p = primitive_for(key);
  Dnnl& d = dnnl_state();
  try {
    if (bf16) {
      thread_local std::vector<uint16_t> a16, b16;
      to_bf16(A, M, K, lda, trans_a, a16);
      to_bf16(B, K, N, ldb, trans_b, b16);
      memory ma(p.a, d.engine, a16.data()), mb(p.b, d.engine, b16.data()), mc(p.c, d.engine, C);
      p.prim.execute(d.stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    } else {
      memory ma(p.a, d.engine, const_cast<float*>(A)), mb(p.b, d.engine, const_cast<float*>(B)),
          mc(p.c, d.engine, C);
      p.prim.execute(d.stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    }
    d.stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("oneDNN matmul failed: ") + e.what());
  }
}

template <>
void gemm<double>(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                  double* C, int64_t ldc, Precision) {
  gemm_reference<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm_reference<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                    int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_reference<double>(bool, bool, int64_t, int64_t, int64_t, double,
                                     const double*, int64_t, const double*, int64_t, double,
                                     double*, int64_t);

}  // namespace difftx
