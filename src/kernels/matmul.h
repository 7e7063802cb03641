#pragma once
// Matrix products. Row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
// float goes through oneDNN matmul primitives, created once per shape and cached; with
// Precision::kBF16 the inputs are rounded to bfloat16 and products accumulate in float.
// double (used by gradient checks) and the reference use a plain loop, which is the source of
// truth in tests.
#include <cstdint>

namespace difftx {

enum class Precision { kFP32, kBF16 };

template <class F>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, F alpha, const F* A,
          int64_t lda, const F* B, int64_t ldb, F beta, F* C, int64_t ldc,
          Precision precision = Precision::kFP32);

template <class F>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, F alpha,
                    const F* A, int64_t lda, const F* B, int64_t ldb, F beta, F* C, int64_t ldc);

// Rounds to bfloat16 (nearest even) and back: what kBF16 does to each input.
float round_to_bf16(float x);

// Whether oneDNN has bf16 matrix products on this CPU (AVX512 and up). Without them, kBF16
// rounds both operands to bf16 and multiplies them in f32: the same values, at the f32 rate.
bool bf16_matmul_native();

// A linear layer without bias: Y[M,N] = X[M,K] W[N,K]^T.
template <class F>
void linear_forward(const F* X, const F* W, F* Y, int64_t M, int64_t N, int64_t K,
                    Precision p = Precision::kFP32) {
  gemm<F>(false, true, M, N, K, F(1), X, K, W, K, F(0), Y, N, p);
}

// dX = dY W (or dX += when accumulate_dx), dW += dY^T X. Either output may be null.
template <class F>
void linear_backward(const F* dY, const F* X, const F* W, F* dX, F* dW, int64_t M, int64_t N,
                     int64_t K, bool accumulate_dx, Precision p = Precision::kFP32) {
  if (dX) gemm<F>(false, false, M, K, N, F(1), dY, N, W, K, accumulate_dx ? F(1) : F(0), dX, K, p);
  if (dW) gemm<F>(true, false, N, K, M, F(1), dY, N, X, K, F(1), dW, K, p);
}

}  // namespace difftx
