#pragma once
// Mean cross-entropy of logits [rows, vocab] against targets [rows]; a target < 0 is ignored.
#include <cstdint>

namespace difftx {

// Returns the mean loss over counted rows (0 when no row counts) and the count.
template <class F>
double cross_entropy_forward(const F* logits, const int32_t* targets, int64_t rows,
                             int64_t vocab, int64_t* counted);

// dlogits (overwritten) = dloss * (softmax(logits) - onehot(target)) / counted; ignored rows
// get zeros. dlogits may alias logits.
template <class F>
void cross_entropy_backward(const F* logits, const int32_t* targets, int64_t rows,
                            int64_t vocab, double dloss, F* dlogits);

}  // namespace difftx
