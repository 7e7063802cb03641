#include "kernels/cached_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/simd.h"

namespace difftx {

void cached_attention_forward(const HeadGeometry& q, const HeadGeometry& cache, const float* Q,
                              const float* Kc, const float* Vc, const int64_t* seq,
                              const int64_t* pos0, float lambda, float* O) {
  check(q.Pq == cache.Pq && q.Pk == cache.Pk && q.ncomp == cache.ncomp && q.d == cache.d,
        "cached attention: query and cache geometries differ");
  for (int64_t b = 0; b < q.B; ++b)
    check(seq[b] >= 0 && seq[b] < cache.B && pos0[b] >= 0 && pos0[b] + q.T <= cache.T,
          "cached attention: row ", b, " is outside the cache");
  const int64_t nc = q.ncomp, d = q.d, dv = q.dv();
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < q.B; ++b) {
    for (int64_t h = 0; h < q.Pq; ++h) {
      thread_local std::vector<float> scores;  // [ncomp, keys]
      const int64_t g = q.group_of(h), s = seq[b];
      const float* v = Vc + cache.v_off(s, g);
      for (int64_t t = 0; t < q.T; ++t) {
        const int64_t n_keys = pos0[b] + t + 1;
        if (static_cast<int64_t>(scores.size()) < nc * n_keys)
          scores.resize(static_cast<size_t>(nc * n_keys));
        for (int64_t c = 0; c < nc; ++c) {  // softmax weights of each map, scaled by its sign
          const float* qv = Q + q.q_off(b, h, c, t);
          const float* k = Kc + cache.k_off(s, g, c);
          float* w = scores.data() + c * n_keys;
          float mx = -INFINITY;
          for (int64_t j = 0; j < n_keys; ++j) {
            float dot = 0.f;
#pragma omp simd reduction(+ : dot)
            for (int64_t e = 0; e < d; ++e) dot += qv[e] * k[j * d + e];
            w[j] = dot * scale;
            mx = std::max(mx, w[j]);
          }
          float sum = 0.f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < n_keys; ++j) sum += (w[j] = fast_exp(w[j] - mx));
          const float coef = (c == 0 ? 1.f : -lambda) / sum;
#pragma omp simd
          for (int64_t j = 0; j < n_keys; ++j) w[j] *= coef;
        }
        float* o = O + q.o_off(b, t, h);
        std::fill(o, o + dv, 0.f);
        const float* w1 = scores.data();
        const float* w2 = scores.data() + n_keys;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float a = nc == 2 ? w1[j] + w2[j] : w1[j];
#pragma omp simd
          for (int64_t e = 0; e < dv; ++e) o[e] += a * v[j * dv + e];
        }
      }
    }
  }
}

}  // namespace difftx
