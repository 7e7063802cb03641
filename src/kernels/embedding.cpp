#include "kernels/embedding.h"

#include <algorithm>
#include <cstring>

namespace difftx {

template <class F>
void embedding_forward(const F* table, const int32_t* tokens, F* out, int64_t rows,
                       int64_t dim) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out + r * dim, table + static_cast<int64_t>(tokens[r]) * dim, sizeof(F) * dim);
}

template <class F>
void embedding_backward(const F* dout, const int32_t* tokens, F* dtable, int64_t rows,
                        int64_t dim) {
  constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < dim; c0 += kBlock) {
    const int64_t c1 = std::min(dim, c0 + kBlock);
    for (int64_t r = 0; r < rows; ++r) {
      F* dst = dtable + static_cast<int64_t>(tokens[r]) * dim;
      const F* src = dout + r * dim;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

template void embedding_forward<float>(const float*, const int32_t*, float*, int64_t, int64_t);
template void embedding_forward<double>(const double*, const int32_t*, double*, int64_t,
                                        int64_t);
template void embedding_backward<float>(const float*, const int32_t*, float*, int64_t, int64_t);
template void embedding_backward<double>(const double*, const int32_t*, double*, int64_t,
                                         int64_t);

}  // namespace difftx
