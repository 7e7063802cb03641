#pragma once
// SwiGLU on the fused gate/up projection: gu row = [gate (F) | up (F)], act = silu(gate) * up.
#include <cstdint>

namespace difftx {

template <class F>
void swiglu_forward(const F* gu, F* act, int64_t rows, int64_t f);

// dgu (overwritten) from dact.
template <class F>
void swiglu_backward(const F* gu, const F* dact, F* dgu, int64_t rows, int64_t f);

}  // namespace difftx
