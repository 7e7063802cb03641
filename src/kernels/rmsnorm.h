#pragma once
// RMSNorm over the last dimension: y = x * rsqrt(mean(x^2) + eps) * w * scale.
// Used for the block norms (scale 1) and for differential attention's per-head norm
// (width 2d, optional weight, scale 1 - lambda_init).
#include <cstdint>

namespace difftx {

// x, y: [rows, n]; w: [n] or null (no weight); inv_rms: [rows] saved for backward.
template <class F>
void rmsnorm_forward(const F* x, const F* w, F scale, F eps, F* y, F* inv_rms, int64_t rows,
                     int64_t n);

// Adds the gradient to dx (dx += ...) and to dw when w and dw are non-null.
template <class F>
void rmsnorm_backward(const F* dy, const F* x, const F* w, F scale, const F* inv_rms, F* dx,
                      F* dw, int64_t rows, int64_t n);

}  // namespace difftx
