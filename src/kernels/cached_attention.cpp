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
  const int64_t rep = q.rep();
  // One task per (row, key group): the rep query heads that share a group read each cached key
  // and value row once between them (GQA, and DIFF V2's sub-head pairs), so a decode step reads
  // the cache once, however many query heads there are.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < q.B; ++b) {
    for (int64_t g = 0; g < q.Pk; ++g) {
      thread_local std::vector<float> scores;  // [rep, ncomp, keys]
      const int64_t h0 = g * rep, s = seq[b];
      const float* v = Vc + cache.v_off(s, g);
      for (int64_t t = 0; t < q.T; ++t) {
        const int64_t n_keys = pos0[b] + t + 1;
        if (static_cast<int64_t>(scores.size()) < rep * nc * n_keys)
          scores.resize(static_cast<size_t>(rep * nc * n_keys));
        const auto weights = [&](int64_t r, int64_t c) { return scores.data() + (r * nc + c) * n_keys; };
        for (int64_t c = 0; c < nc; ++c) {
          const float* k = Kc + cache.k_off(s, g, c);
          for (int64_t j = 0; j < n_keys; ++j) {
            const float* kj = k + j * d;
            for (int64_t r = 0; r < rep; ++r) {
              const float* qv = Q + q.q_off(b, h0 + r, c, t);
              float dot = 0.f;
#pragma omp simd reduction(+ : dot)
              for (int64_t e = 0; e < d; ++e) dot += qv[e] * kj[e];
              weights(r, c)[j] = dot * scale;
            }
          }
          for (int64_t r = 0; r < rep; ++r) {  // softmax weights of each map, scaled by its sign
            float* w = weights(r, c);
            float mx = -INFINITY;
            for (int64_t j = 0; j < n_keys; ++j) mx = std::max(mx, w[j]);
            float sum = 0.f;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n_keys; ++j) sum += (w[j] = fast_exp(w[j] - mx));
            const float coef = (c == 0 ? 1.f : -lambda) / sum;
#pragma omp simd
            for (int64_t j = 0; j < n_keys; ++j) w[j] *= coef;
          }
        }
        for (int64_t r = 0; r < rep; ++r) {
          float* o = O + q.o_off(b, t, h0 + r);
          std::fill(o, o + dv, 0.f);
        }
        for (int64_t j = 0; j < n_keys; ++j) {
          const float* vj = v + j * dv;
          for (int64_t r = 0; r < rep; ++r) {
            const float a = nc == 2 ? weights(r, 0)[j] + weights(r, 1)[j] : weights(r, 0)[j];
            float* o = O + q.o_off(b, t, h0 + r);
#pragma omp simd
            for (int64_t e = 0; e < dv; ++e) o[e] += a * vj[e];
          }
        }
      }
    }
  }
}

}  // namespace difftx
