#include "kernels/rope.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace difftx {

RopeTable make_rope_table(int64_t T, const std::vector<double>& inv_freq, bool interleaved) {
  RopeTable r;
  r.T = T;
  r.half = static_cast<int64_t>(inv_freq.size());
  r.interleaved = interleaved;
  r.inv_freq = inv_freq;
  r.cos.resize(static_cast<size_t>(T * r.half));
  r.sin.resize(r.cos.size());
  for (int64_t i = 0; i < r.half; ++i) {
    const double f = inv_freq[static_cast<size_t>(i)];
    for (int64_t t = 0; t < T; ++t) {
      r.cos[t * r.half + i] = std::cos(static_cast<double>(t) * f);
      r.sin[t * r.half + i] = std::sin(static_cast<double>(t) * f);
    }
  }
  return r;
}

RopeTable make_rope_table(int64_t T, int64_t d, double theta, bool interleaved) {
  std::vector<double> inv_freq(static_cast<size_t>(d / 2));
  for (int64_t i = 0; i < d / 2; ++i)
    inv_freq[static_cast<size_t>(i)] =
        std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
  return make_rope_table(T, inv_freq, interleaved);
}

template <class F>
void rope_rotate(const RopeTable& rope, int64_t t, F* x, bool inverse) {
  const double* c = rope.cos.data() + t * rope.half;
  const double* s = rope.sin.data() + t * rope.half;
  for (int64_t i = 0; i < rope.half; ++i) {
    F& x0 = rope.interleaved ? x[2 * i] : x[i];
    F& x1 = rope.interleaved ? x[2 * i + 1] : x[i + rope.half];
    const double sn = inverse ? -s[i] : s[i];
    const double a = x0, b = x1;
    x0 = static_cast<F>(a * c[i] - b * sn);
    x1 = static_cast<F>(a * sn + b * c[i]);
  }
}

// One routine does both directions so that backward is exactly the transpose of forward.
template <class F, bool kBackward>
static void qkv_heads_impl(const HeadGeometry& a, HeadMapping map, const RopeTable& rope,
                           const F* qkv_in, F* Q, F* K, F* V, F* dqkv_out, const int64_t* pos0) {
  const int64_t nq = a.Pq * a.ncomp, nk = a.Pk * a.ncomp, d = a.d, T = a.T;
  const int64_t row = (nq + 2 * nk) * d;
  for (int64_t b = 0; b < a.B; ++b)
    check((pos0 ? pos0[b] : 0) + T <= rope.T, "rotary table of ", rope.T,
          " positions is too short for position ", (pos0 ? pos0[b] : 0) + T - 1);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < a.B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t m = b * T + t, pos = (pos0 ? pos0[b] : 0) + t;
      for (int64_t s = 0; s < nq + 2 * nk; ++s) {
        F* canon;
        bool rotate = true;
        if (s < nq) {
          const HeadSlot sl = head_slot(s, a.Pq, a.ncomp, map);
          canon = Q + a.q_off(b, sl.head, sl.comp, t);
        } else if (s < nq + nk) {
          const HeadSlot sl = head_slot(s - nq, a.Pk, a.ncomp, map);
          canon = K + a.k_off(b, sl.head, sl.comp, t);
        } else {
          const HeadSlot sl = head_slot(s - nq - nk, a.Pk, a.ncomp, map);
          canon = V + a.v_off(b, sl.head, t) + sl.comp * d;
          rotate = false;
        }
        if constexpr (!kBackward) {
          std::memcpy(canon, qkv_in + m * row + s * d, sizeof(F) * d);
          if (rotate) rope_rotate(rope, pos, canon, false);
        } else {
          F* dst = dqkv_out + m * row + s * d;
          std::memcpy(dst, canon, sizeof(F) * d);
          if (rotate) rope_rotate(rope, pos, dst, true);
        }
      }
    }
  }
}

template <class F>
void qkv_to_heads(const HeadGeometry& dims, HeadMapping map, const RopeTable& rope, const F* qkv,
                  F* Q, F* K, F* V, const int64_t* pos0) {
  qkv_heads_impl<F, false>(dims, map, rope, qkv, Q, K, V, nullptr, pos0);
}

template <class F>
void qkv_to_heads_backward(const HeadGeometry& dims, HeadMapping map, const RopeTable& rope,
                           const F* dQ, const F* dK, const F* dV, F* dqkv) {
  qkv_heads_impl<F, true>(dims, map, rope, nullptr, const_cast<F*>(dQ), const_cast<F*>(dK),
                          const_cast<F*>(dV), dqkv, nullptr);
}

template void rope_rotate<float>(const RopeTable&, int64_t, float*, bool);
template void rope_rotate<double>(const RopeTable&, int64_t, double*, bool);
template void qkv_to_heads<float>(const HeadGeometry&, HeadMapping, const RopeTable&, const float*,
                                  float*, float*, float*, const int64_t*);
template void qkv_to_heads<double>(const HeadGeometry&, HeadMapping, const RopeTable&,
                                   const double*, double*, double*, double*, const int64_t*);
template void qkv_to_heads_backward<float>(const HeadGeometry&, HeadMapping, const RopeTable&,
                                           const float*, const float*, const float*, float*);
template void qkv_to_heads_backward<double>(const HeadGeometry&, HeadMapping, const RopeTable&,
                                            const double*, const double*, const double*,
                                            double*);

}  // namespace difftx
