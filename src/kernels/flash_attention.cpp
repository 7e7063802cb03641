#include "kernels/flash_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "core/error.h"
#include "kernels/simd.h"

// Design notes.
//
// Every product in forward and backward is one small "tile GEMM" C (=|+=) A * B with B
// row-major [k][n] (contiguous along n, loaded as vectors) and A read by broadcasting single
// elements at A[r * ars + k * acs], so A can be a tile or the transpose of one at no cost:
//
//   forward  (per query block i, key block j)   S^T = K_j Qt_i     O_c += P_c V_j
//   backward (per key block j, query block i)   S_c = Q_i Kt_j     dP = dO_i Vt_j
//            dV_j += (P1 - lambda P2)^T dO_i    dQ_i += dS_c K_j   dK_j += dS_c^T Q_i
//
// where Qt, Kt, Vt are small transposed copies packed per block. Differential attention shares
// V between its two maps, so backward computes dP = dO V^T once (dP_c = coef_c dP, coef =
// (1, -lambda)) and dV once from the combined map; forward keeps the two maps' outputs apart
// because backward needs rowsum(dO * O_c) and dlambda = -sum(dO * O2).
//
// Forward computes S^T (keys x queries) so that the online softmax runs along vectors of
// queries (column max, column sums) and no transposes are needed; backward computes S (queries
// x keys) because its softmax statistics are per query row again.
//
// Threads (OpenMP, one region per phase, never nested): forward splits (batch, head, query
// block) items, largest first, dynamically, so it balances whether B*Pq is 1 or 100. Backward
// gives each thread whole (batch, key group) items when they divide evenly among threads (no
// races: a group owns its dK, dV and the dQ of its heads); otherwise it splits each group's
// key blocks among threads, each adding into a private dQ buffer that is summed afterwards.

namespace difftx {
namespace {

using namespace simd;

constexpr int64_t BQ = 64;  // query rows per block
constexpr int64_t BK = 64;  // keys per block
static_assert(BQ % W == 0 && BK % W == 0, "blocks must be whole vectors");

// C[R x NV*W] (=|+=) sum_k A(r, k) B[k, :], A(r, k) = A[r * ars + k * acs].
template <int R, int NV>
inline void micro(int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                  int64_t ldb, float* C, int64_t ldc, bool acc) {
  vf c[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = acc ? loadu(C + r * ldc + v * W) : vf{};
  const float* a[R];
  for (int r = 0; r < R; ++r) a[r] = A + r * ars;
  for (int64_t k = 0; k < K; ++k) {
    vf b[NV];
    for (int v = 0; v < NV; ++v) {
      b[v] = loadu(B + k * ldb + v * W);
      keep_in_register(b[v]);
    }
    for (int r = 0; r < R; ++r) {
      const vf av = splat(a[r][k * acs]);
      for (int v = 0; v < NV; ++v) c[r][v] += av * b[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) storeu(C + r * ldc + v * W, c[r][v]);
}

// Rows per microkernel: with 4 vectors per row, 6 x 4 = 24 accumulators of AVX-512's 32
// registers (3 x 4 of AVX2's 16, 2 x 4 of SSE's 16), leaving room for B and the broadcast.
constexpr int MR = W == 16 ? 6 : W == 8 ? 3 : 2;
static_assert(MR <= 6, "rows_panel handles remainders of up to 5 rows");

template <int NV>
void rows_panel(int64_t M, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                int64_t ldb, float* C, int64_t ldc, bool acc) {
  int64_t m = 0;
  for (; m + MR <= M; m += MR)
    micro<MR, NV>(K, A + m * ars, ars, acs, B, ldb, C + m * ldc, ldc, acc);
  const float* Am = A + m * ars;
  float* Cm = C + m * ldc;
  switch (M - m) {
    case 0: break;
    case 1: micro<1, NV>(K, Am, ars, acs, B, ldb, Cm, ldc, acc); break;
    case 2: micro<2, NV>(K, Am, ars, acs, B, ldb, Cm, ldc, acc); break;
    case 3: micro<3, NV>(K, Am, ars, acs, B, ldb, Cm, ldc, acc); break;
    case 4: micro<4, NV>(K, Am, ars, acs, B, ldb, Cm, ldc, acc); break;
    case 5: micro<5, NV>(K, Am, ars, acs, B, ldb, Cm, ldc, acc); break;
    default: break;
  }
}

// C[M x N] (=|+=) A(M x K) B[K x N]; see micro for A's addressing.
void tile_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs,
               const float* B, int64_t ldb, float* C, int64_t ldc, bool acc) {
  if (M <= 0 || N <= 0) return;
  const int64_t nvec = N / W;
  int64_t v = 0;
  // Column panels of 4 vectors: the K x 4W panel of B stays in L1 while row blocks sweep it.
  for (; v + 4 <= nvec; v += 4)
    rows_panel<4>(M, K, A, ars, acs, B + v * W, ldb, C + v * W, ldc, acc);
  switch (nvec - v) {
    case 1: rows_panel<1>(M, K, A, ars, acs, B + v * W, ldb, C + v * W, ldc, acc); break;
    case 2: rows_panel<2>(M, K, A, ars, acs, B + v * W, ldb, C + v * W, ldc, acc); break;
    case 3: rows_panel<3>(M, K, A, ars, acs, B + v * W, ldb, C + v * W, ldc, acc); break;
    default: break;
  }
  // Columns that do not fill a vector (head widths that are not a multiple of W).
  for (int64_t n = nvec * W; n < N; ++n) {
    for (int64_t m = 0; m < M; ++m) {
      float s = acc ? C[m * ldc + n] : 0.f;
      for (int64_t k = 0; k < K; ++k) s += A[m * ars + k * acs] * B[k * ldb + n];
      C[m * ldc + n] = s;
    }
  }
}

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols; zero for rows <= r < rows_pad.
void pack_transposed(const float* src, int64_t lds, int64_t rows, int64_t rows_pad,
                     int64_t cols, float* dst, int64_t ldd) {
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {  // 16 x 16 blocks keep both sides in cache lines
    const int64_t r1 = std::min(rows, r0 + 16);
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      const int64_t c1 = std::min(cols, c0 + 16);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) dst[c * ldd + r] = src[r * lds + c];
    }
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = rows; r < rows_pad; ++r) dst[c * ldd + r] = 0.f;
}

// y[0, n) *= a
inline void scale_row(float* y, int64_t n, float a) {
  int64_t e = 0;
  const vf av = splat(a);
  for (; e + W <= n; e += W) storeu(y + e, loadu(y + e) * av);
  for (; e < n; ++e) y[e] *= a;
}

// HeadGeometry plus the kernel's block counts and scale. Offsets are HeadGeometry's; the
// softmax statistics (lse) are one float per (b, h, c, t) row.
struct Geometry : HeadGeometry {
  int64_t nc, dv, rep, nqb, nkb;
  float scale;
  explicit Geometry(const HeadGeometry& s)
      : HeadGeometry(s), nc(s.ncomp), dv(s.dv()), rep(s.rep()), nqb((s.T + BQ - 1) / BQ),
        nkb((s.T + BK - 1) / BK),
        scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d)))) {}
  int64_t row_off(int64_t b, int64_t h, int64_t c) const { return map_index(b, h, c) * T; }
  int64_t o_off(int64_t b, int64_t h, int64_t i) const { return HeadGeometry::o_off(b, i, h); }
};

void check_dims(const HeadGeometry& s) {
  if (s.B < 0 || s.T < 0 || s.Pq < 1 || s.Pk < 1 || s.Pq % s.Pk != 0 || s.d < 1 ||
      (s.ncomp != 1 && s.ncomp != 2))
    throw Error("flash attention: invalid dims");
}

// ---------------------------------------------------------------- forward

// One buffer per thread, kept for the thread's lifetime (OpenMP's pool threads persist), so
// repeated calls neither allocate nor fault in fresh pages: about 0.2 MB per thread at d = 64.
float* thread_buffer(int64_t n) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

struct FwdScratch {
  float *qt, *st, *mrow, *lrow, *oacc, *alpha;
  explicit FwdScratch(const Geometry& g) {
    float* p = thread_buffer(floats(g));
    qt = p, p += g.nc * g.d * BQ;   // Q_i^T per map [d, BQ]
    st = p, p += BK * BQ;           // S^T, then P^T [BK, BQ]
    mrow = p, p += g.nc * BQ;       // running max per map and query
    lrow = p, p += g.nc * BQ;       // running sum
    oacc = p, p += g.nc * BQ * g.dv;  // unnormalised O_c [BQ, dv]
    alpha = p;                      // [BQ]
  }
  static int64_t floats(const Geometry& g) {
    return g.nc * g.d * BQ + BK * BQ + 2 * g.nc * BQ + g.nc * BQ * g.dv + BQ;
  }
};

void forward_block(const Geometry& G, int64_t b, int64_t h, int64_t qb, const float* Q,
                   const float* K, const float* V, float lambda, float* O, float* lse,
                   float* omaps, FwdScratch& ws) {
  const int64_t i0 = qb * BQ, m = std::min(BQ, G.T - i0), grp = h / G.rep;
  const int64_t d = G.d, dv = G.dv;
  const int64_t nkb = (i0 + m - 1) / BK + 1;  // key blocks at or below the diagonal
  const float* v = V + G.v_off(b, grp);
  for (int64_t c = 0; c < G.nc; ++c) {
    pack_transposed(Q + G.q_off(b, h, c) + i0 * d, d, m, BQ, d, ws.qt + c * d * BQ, BQ);
    std::fill_n(ws.mrow + c * BQ, BQ, -std::numeric_limits<float>::infinity());
    std::fill_n(ws.lrow + c * BQ, BQ, 0.f);
  }
  const vf vscale = splat(G.scale);
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const int64_t j0 = kb * BK, n = std::min(BK, G.T - j0);
    for (int64_t c = 0; c < G.nc; ++c) {
      float* st = ws.st;
      float* mr = ws.mrow + c * BQ;
      float* lr = ws.lrow + c * BQ;
      float* oacc = ws.oacc + c * BQ * dv;
      // S^T[j, i] = K_j . Q_i (keys x queries)
      tile_gemm(n, BQ, d, K + G.k_off(b, grp, c) + j0 * d, d, 1, ws.qt + c * d * BQ, BQ,
                st, BQ, false);
      // Scale, mask (key j0+j > query i0+i), new column maxima.
      vf mx[BQ / W];
      for (int64_t u = 0; u < BQ / W; ++u) mx[u] = loadu(mr + u * W);
      const bool diag = j0 + n - 1 > i0;
      const vi lane = iota();
      for (int64_t j = 0; j < n; ++j) {
        float* row = st + j * BQ;
        for (int64_t u = 0; u < BQ / W; ++u) {
          vf s = loadu(row + u * W) * vscale;
          if (diag) {  // query index i0 + u W + lane < key index j0 + j: masked
            const vi qi = lane + static_cast<int32_t>(i0 + u * W - j0 - j);
            s = qi < 0 ? splat(-INFINITY) : s;
          }
          storeu(row + u * W, s);
          mx[u] = vmax(mx[u], s);
        }
      }
      // alpha = exp(m_old - m_new), P = exp(S - m_new), l = alpha l + sum_j P.
      vf sum[BQ / W];
      for (int64_t u = 0; u < BQ / W; ++u) {
        const vf mold = loadu(mr + u * W);
        // A column still at -inf (only padding columns) keeps m = 0 so no NaN appears.
        mx[u] = mx[u] == splat(-INFINITY) ? vf{} : mx[u];
        storeu(ws.alpha + u * W, vexp(mold - mx[u]));
        storeu(mr + u * W, mx[u]);
        sum[u] = vf{};
      }
      for (int64_t j = 0; j < n; ++j) {
        float* row = st + j * BQ;
        for (int64_t u = 0; u < BQ / W; ++u) {
          const vf p = vexp(loadu(row + u * W) - mx[u]);
          storeu(row + u * W, p);
          sum[u] += p;
        }
      }
      for (int64_t u = 0; u < BQ / W; ++u)
        storeu(lr + u * W, loadu(lr + u * W) * loadu(ws.alpha + u * W) + sum[u]);
      if (kb > 0)
        for (int64_t i = 0; i < m; ++i) scale_row(oacc + i * dv, dv, ws.alpha[i]);
      // O_c[i, :] += sum_j P[i, j] V[j, :], with P read from the transposed tile.
      tile_gemm(m, dv, n, st, 1, BQ, v + j0 * dv, dv, oacc, dv, kb > 0);
    }
  }
  // Normalise, save the logsumexp and the per-map outputs, write O = O1 - lambda O2.
  for (int64_t c = 0; c < G.nc; ++c) {
    float* ls = lse + G.row_off(b, h, c) + i0;
    float* om = omaps + (G.row_off(b, h, c) + i0) * dv;
    for (int64_t i = 0; i < m; ++i) {
      const float l = ws.lrow[c * BQ + i];
      ls[i] = ws.mrow[c * BQ + i] + std::log(l);
      const float inv = 1.f / l;
      const float* oa = ws.oacc + (c * BQ + i) * dv;
      for (int64_t e = 0; e < dv; ++e) om[i * dv + e] = oa[e] * inv;
    }
  }
  const float* om1 = omaps + G.row_off(b, h, 0) * dv + i0 * dv;
  for (int64_t i = 0; i < m; ++i) {
    float* o = O + G.o_off(b, h, i0 + i);
    const float* o1 = om1 + i * dv;
    if (G.nc == 2) {
      const float* o2 = om1 + G.T * dv + i * dv;
      for (int64_t e = 0; e < dv; ++e) o[e] = o1[e] - lambda * o2[e];
    } else {
      std::memcpy(o, o1, static_cast<size_t>(dv) * sizeof(float));
    }
  }
}

// ---------------------------------------------------------------- backward

struct BwdScratch {
  float *kt, *vt, *dk, *dvacc, *s, *dp, *pc, *dot;
  explicit BwdScratch(const Geometry& g) {
    float* p = thread_buffer(floats(g));
    kt = p, p += g.nc * g.d * BK;  // K_j^T per map [d, BK]
    vt = p, p += g.dv * BK;        // V_j^T [dv, BK]
    dk = p, p += g.nc * BK * g.d;  // dK_j per map [BK, d]
    dvacc = p, p += BK * g.dv;     // dV_j [BK, dv]
    s = p, p += g.nc * BQ * BK;    // S, then P, then dS per map [BQ, BK]
    dp = p, p += BQ * BK;          // dO_i V_j^T
    pc = p, p += BQ * BK;          // P1 - lambda P2
    dot = p;                       // dO_i, contiguous [BQ, dv]
  }
  static int64_t floats(const Geometry& g) {
    return g.nc * g.d * BK + g.dv * BK + g.nc * BK * g.d + BK * g.dv + g.nc * BQ * BK +
           2 * BQ * BK + BQ * g.dv;
  }
};

// All work of key block kb of group (b, grp): writes rows [j0, j0 + n) of dK and dV and adds
// into dq, the dQ of the group's heads ([rep, ncomp, T, d], either dQ itself or a private
// buffer), or overwrites it when dq_fresh (key block 0 reaches every query row). D holds
// rowsum(dO * O_c) per [B, Pq, ncomp, T].
void backward_block(const Geometry& G, int64_t b, int64_t grp, int64_t kb, const float* Q,
                    const float* K, const float* V, float lambda, const float* lse,
                    const float* D, const float* dO, float* dq, bool dq_fresh, float* dK,
                    float* dV, BwdScratch& ws) {
  const int64_t d = G.d, dv = G.dv, j0 = kb * BK, n = std::min(BK, G.T - j0);
  const float* v = V + G.v_off(b, grp) + j0 * dv;
  for (int64_t c = 0; c < G.nc; ++c)
    pack_transposed(K + G.k_off(b, grp, c) + j0 * d, d, n, BK, d, ws.kt + c * d * BK, BK);
  pack_transposed(v, dv, n, BK, dv, ws.vt, BK);
  const vf vscale = splat(G.scale);
  bool first = true;  // the first tile product overwrites the dK, dV accumulators
  for (int64_t h = grp * G.rep; h < (grp + 1) * G.rep; ++h) {
    const int64_t hh = h - grp * G.rep;
    for (int64_t qb = j0 / BQ; qb < G.nqb; ++qb) {
      const int64_t i0 = qb * BQ, m = std::min(BQ, G.T - i0);
      // dO_i, copied out of the token-major dO: its rows are Pq * dv apart, a power-of-two
      // stride at which a 64-row tile would fall into a few L1 sets.
      for (int64_t i = 0; i < m; ++i)
        std::memcpy(ws.dot + i * dv, dO + G.o_off(b, h, i0 + i),
                    static_cast<size_t>(dv) * sizeof(float));
      const float* dO_i = ws.dot;
      // dP = dO_i V_j^T (shared by both maps up to their coefficient)
      tile_gemm(m, BK, dv, dO_i, dv, 1, ws.vt, BK, ws.dp, BK, false);
      const bool diag = j0 + n - 1 > i0;
      for (int64_t c = 0; c < G.nc; ++c) {
        float* s = ws.s + c * BQ * BK;
        const float* q = Q + G.q_off(b, h, c) + i0 * d;
        tile_gemm(m, BK, d, q, d, 1, ws.kt + c * d * BK, BK, s, BK, false);
        const float* ls = lse + G.row_off(b, h, c) + i0;
        for (int64_t i = 0; i < m; ++i) {
          float* row = s + i * BK;
          const vf l = splat(ls[i]);
          // keys j >= n (past T) and j0 + j > i0 + i (above the diagonal) get P = 0
          const int64_t lim = std::min(n, diag ? i0 + i - j0 + 1 : n);
          for (int64_t u = 0; u < BK / W; ++u) {
            vf p = vexp(loadu(row + u * W) * vscale - l);
            if (u * W + W > lim) {
              const vi jj = iota() + static_cast<int32_t>(u * W - lim);
              p = jj >= 0 ? vf{} : p;
            }
            storeu(row + u * W, p);
          }
        }
      }
      // dV_j += (P1 - lambda P2)^T dO_i
      const float* pcomb = ws.s;
      if (G.nc == 2) {
        const vf lam = splat(lambda);
        for (int64_t e = 0; e < m * BK; e += W)
          storeu(ws.pc + e, loadu(ws.s + e) - lam * loadu(ws.s + BQ * BK + e));
        pcomb = ws.pc;
      }
      tile_gemm(n, dv, m, pcomb, 1, BK, dO_i, dv, ws.dvacc, dv, !first);
      for (int64_t c = 0; c < G.nc; ++c) {
        float* s = ws.s + c * BQ * BK;
        const float coef = (c == 0 ? 1.f : -lambda) * G.scale;
        const float* Dc = D + G.row_off(b, h, c) + i0;
        // dS = coef * P * (dP - D_c) * scale   (D_c here is rowsum(dO * O_c), without coef)
        for (int64_t i = 0; i < m; ++i) {
          const vf dd = splat(Dc[i]), cf = splat(coef);
          float* row = s + i * BK;
          const float* dpr = ws.dp + i * BK;
          for (int64_t u = 0; u < BK / W; ++u)
            storeu(row + u * W, cf * loadu(row + u * W) * (loadu(dpr + u * W) - dd));
        }
        // dQ_i += dS K_j ;  dK_j += dS^T Q_i
        float* dqc = dq + (hh * G.nc + c) * G.T * d + i0 * d;
        tile_gemm(m, d, n, s, BK, 1, K + G.k_off(b, grp, c) + j0 * d, d, dqc, d, !dq_fresh);
        tile_gemm(n, d, m, s, 1, BK, Q + G.q_off(b, h, c) + i0 * d, d,
                  ws.dk + c * BK * d, d, !first);
      }
      first = false;
    }
  }
  for (int64_t c = 0; c < G.nc; ++c)
    std::memcpy(dK + G.k_off(b, grp, c) + j0 * d, ws.dk + c * BK * d,
                static_cast<size_t>(n * d) * sizeof(float));
  std::memcpy(dV + G.v_off(b, grp) + j0 * dv, ws.dvacc,
              static_cast<size_t>(n * dv) * sizeof(float));
}

// Backward hands whole (batch, group) items to threads when they split evenly enough.
bool backward_by_group(const Geometry& G, int nthreads) {
  const int64_t items = G.B * G.Pk;
  if (nthreads <= 1) return true;
  if (items < nthreads) return false;
  const int64_t rounds = (items + nthreads - 1) / nthreads;  // busiest thread's items
  return static_cast<double>(items) / (static_cast<double>(rounds) * nthreads) >= 0.9;
}

}  // namespace

void flash_attention_forward(const HeadGeometry& dims, const float* Q, const float* K,
                             const float* V, float lambda, float* O, FlashSaved& saved) {
  check_dims(dims);
  const Geometry G(dims);
  // Every element is written below, so a repeated call with the same dims writes no zeros.
  saved.lse.resize(static_cast<size_t>(G.B * G.Pq * G.nc * G.T));
  saved.o_maps.resize(static_cast<size_t>(G.B * G.Pq * G.nc * G.T * G.dv));
  const int64_t bh = G.B * G.Pq, items = bh * G.nqb;
  if (items == 0) return;
#pragma omp parallel
  {
    FwdScratch ws(G);
    // Largest query blocks first, then dynamic: balanced for any B * Pq.
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t qb = G.nqb - 1 - it / bh, x = it % bh;
      forward_block(G, x / G.Pq, x % G.Pq, qb, Q, K, V, lambda, O, saved.lse.data(),
                    saved.o_maps.data(), ws);
    }
  }
}

float flash_attention_backward(const HeadGeometry& dims, const float* Q, const float* K,
                               const float* V, float lambda, const FlashSaved& saved,
                               const float* dO, float* dQ, float* dK, float* dV) {
  check_dims(dims);
  const Geometry G(dims);
  const int64_t rows = G.B * G.Pq * G.nc * G.T;
  if (static_cast<int64_t>(saved.lse.size()) != rows ||
      static_cast<int64_t>(saved.o_maps.size()) != rows * G.dv)
    throw Error("flash attention backward: saved state does not match the dims");
  if (rows == 0) return 0.f;
  // D_c[i] = rowsum(dO_i * O_c,i); dlambda = -sum(dO * O2).
  std::unique_ptr<float[]> D(new float[static_cast<size_t>(rows)]);
  double dlambda = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : dlambda)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % G.T, c = (r / G.T) % G.nc, h = (r / (G.T * G.nc)) % G.Pq,
                  b = r / (G.T * G.nc * G.Pq);
    const float* o = saved.o_maps.data() + r * G.dv;
    const float* g = dO + G.o_off(b, h, i);
    double acc = 0.0;
    for (int64_t e = 0; e < G.dv; ++e) acc += static_cast<double>(g[e]) * o[e];
    D[r] = static_cast<float>(acc);
    if (c == 1) dlambda -= acc;
  }
  const int64_t groups = G.B * G.Pk, gq = G.rep * G.nc * G.T * G.d;  // dQ floats per group
  const int nthreads = omp_get_max_threads();
  if (backward_by_group(G, nthreads)) {
#pragma omp parallel
    {
      BwdScratch ws(G);
#pragma omp for schedule(dynamic, 1)
      for (int64_t x = 0; x < groups; ++x) {
        const int64_t b = x / G.Pk, grp = x % G.Pk;
        float* dq = dQ + G.q_off(b, grp * G.rep, 0);
        for (int64_t kb = 0; kb < G.nkb; ++kb)
          backward_block(G, b, grp, kb, Q, K, V, lambda, saved.lse.data(), D.get(), dO, dq,
                         kb == 0, dK, dV, ws);
      }
    }
  } else {
    // Few groups: split key blocks among threads, each adding into its own dQ buffer.
    std::unique_ptr<float[]> bufs(new float[static_cast<size_t>(nthreads * gq)]);
#pragma omp parallel num_threads(nthreads)
    {
      BwdScratch ws(G);
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      float* mine = bufs.get() + t * gq;
      for (int64_t x = 0; x < groups; ++x) {
        const int64_t b = x / G.Pk, grp = x % G.Pk;
        std::fill_n(mine, gq, 0.f);
        // Key block kb has (nqb - kb) query blocks of work: hand out the heavy ones first.
#pragma omp for schedule(dynamic, 1)
        for (int64_t kb = 0; kb < G.nkb; ++kb)
          backward_block(G, b, grp, kb, Q, K, V, lambda, saved.lse.data(), D.get(), dO, mine,
                         false, dK, dV, ws);
        // (implicit barrier) dQ = sum of the buffers
        float* dq = dQ + G.q_off(b, grp * G.rep, 0);
#pragma omp for schedule(static)
        for (int64_t e = 0; e < gq; ++e) {
          float s = 0.f;
          for (int u = 0; u < nt; ++u) s += bufs[u * gq + e];
          dq[e] = s;
        }
      }
    }
  }
  return G.nc == 2 ? static_cast<float>(dlambda) : 0.f;
}

int64_t flash_attention_extra_bytes(const HeadGeometry& dims, int nthreads) {
  const Geometry G(dims);
  const int64_t rows = G.B * G.Pq * G.nc * G.T;
  const int64_t saved = rows + rows * G.dv;
  const int64_t fwd = nthreads * FwdScratch::floats(G);
  int64_t bwd = rows + nthreads * BwdScratch::floats(G);
  if (!backward_by_group(G, nthreads)) bwd += nthreads * G.rep * G.nc * G.T * G.d;
  return static_cast<int64_t>(sizeof(float)) * (saved + std::max(fwd, bwd));
}

}  // namespace difftx
