#pragma once
// Token embedding lookup and its backward (scatter-add into the table).
#include <cstdint>

namespace difftx {

template <class F>
void embedding_forward(const F* table, const int32_t* tokens, F* out, int64_t rows,
                       int64_t dim);

// dtable[tokens[r]] += dout[r]. Parallel over columns so that repeated tokens never race.
template <class F>
void embedding_backward(const F* dout, const int32_t* tokens, F* dtable, int64_t rows,
                        int64_t dim);

}  // namespace difftx
