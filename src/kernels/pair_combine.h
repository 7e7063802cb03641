#pragma once
// DIFF V2's pair combine (SPEC section 1b). Standard attention over 2n query sub-heads gives
// a [rows, 2n*d] output; head h of the layer's output is
//
//   O_h = a_{2h} - lambda[row, h] * a_{2h+1},   lambda = sigmoid(z),  z = x W_lambda^T  [rows, n]
//
// so the layer's attention output is [rows, n*d], as wide as a baseline's.
#include <cstdint>

namespace difftx {

// lambda (overwritten) = sigmoid(z), elementwise over count values.
template <class F>
void pair_lambda_forward(const F* z, F* lambda, int64_t count);

// pre [rows, 2n*d], lambda [rows, n] -> out [rows, n*d] (overwritten).
template <class F>
void pair_combine_forward(const F* pre, const F* lambda, F* out, int64_t rows, int64_t n,
                          int64_t d);

// From dout [rows, n*d]: dpre [rows, 2n*d] and dz [rows, n] (both overwritten), dz being the
// gradient into the pre-sigmoid logits (through lambda = sigmoid(z)).
template <class F>
void pair_combine_backward(const F* dout, const F* pre, const F* lambda, F* dpre, F* dz,
                           int64_t rows, int64_t n, int64_t d);

}  // namespace difftx
