// The fused flash attention kernel (float) against the reference T x T attention, which is
// the source of truth: O, dQ, dK, dV and dlambda on random inputs, for awkward T (around the
// 64-wide blocks), head widths, GQA ratios, batch sizes, differential and standard attention.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "test_util.h"

namespace difftx {
namespace {

struct FlashCase {
  int64_t B, T, Pq, Pk, ncomp, d;
  double qscale;  // scales Q: larger means peakier softmax rows (harder online rescaling)
};

std::string name_of(const FlashCase& c) {
  return "B" + std::to_string(c.B) + "_T" + std::to_string(c.T) + "_Pq" + std::to_string(c.Pq) +
         "_Pk" + std::to_string(c.Pk) + (c.ncomp == 2 ? "_diff" : "_std") + "_d" +
         std::to_string(c.d) + (c.qscale > 1 ? "_peaky" : "");
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

struct Errors {
  double abs_err = 0, ref_max = 0;
};
Errors compare(const std::vector<float>& got, const std::vector<double>& ref) {
  Errors e;
  for (size_t i = 0; i < ref.size(); ++i) {
    e.abs_err = std::max(e.abs_err, std::abs(static_cast<double>(got[i]) - ref[i]));
    e.ref_max = std::max(e.ref_max, std::abs(ref[i]));
  }
  return e;
}

class FlashTest : public ::testing::TestWithParam<FlashCase> {};

TEST_P(FlashTest, MatchesReference) {
  const FlashCase c = GetParam();
  HeadGeometry s;
  s.B = c.B, s.T = c.T, s.Pq = c.Pq, s.Pk = c.Pk, s.ncomp = c.ncomp, s.d = c.d;
  const int64_t dv = s.dv();
  Rng rng(static_cast<uint64_t>(c.B * 1000003 + c.T * 1009 + c.Pq * 101 + c.Pk * 13 +
                                c.ncomp * 7 + c.d));
  const auto Q = test::random_vector<float>(s.B * s.Pq * s.ncomp * s.T * s.d, rng, c.qscale);
  const auto K = test::random_vector<float>(s.B * s.Pk * s.ncomp * s.T * s.d, rng);
  const auto V = test::random_vector<float>(s.B * s.Pk * s.T * dv, rng);
  const auto dO = test::random_vector<float>(s.B * s.T * s.Pq * dv, rng);
  const float lambda = 0.37f;

  // Truth: the reference in double on the same (float) inputs.
  const auto Qd = to_double(Q), Kd = to_double(K), Vd = to_double(V), dOd = to_double(dO);
  std::vector<double> O_ref(dO.size()), dQ_ref(Q.size()), dK_ref(K.size()), dV_ref(V.size());
  AttentionSaved<double> saved_ref;
  attention_forward_reference<double>(s, Qd.data(), Kd.data(), Vd.data(), lambda,
                                      O_ref.data(), saved_ref);
  const double dl_ref = attention_backward_reference<double>(
      s, Qd.data(), Kd.data(), Vd.data(), lambda, saved_ref, dOd.data(), dQ_ref.data(),
      dK_ref.data(), dV_ref.data());

  // Garbage in the outputs proves they are overwritten, not accumulated into.
  std::vector<float> O(dO.size(), 7.f), dQ(Q.size(), 7.f), dK(K.size(), 7.f), dV(V.size(), 7.f);
  FlashSaved saved;
  flash_attention_forward(s, Q.data(), K.data(), V.data(), lambda, O.data(), saved);
  EXPECT_EQ(saved.lse.size(), static_cast<size_t>(s.B * s.Pq * s.ncomp * s.T));
  const float dl = flash_attention_backward(s, Q.data(), K.data(), V.data(), lambda, saved,
                                            dO.data(), dQ.data(), dK.data(), dV.data());

  // Tolerance, from float rounding and the sizes involved. Each output is a float sum of n
  // products in a blocked order; rounding errors of random sign grow like sqrt(n) * eps times
  // the size of the result, and the exp/softmax steps add a few eps of relative error to each
  // probability. The longest sums: O and dQ run over T keys, dK and dV over rep * T queries,
  // each fed by inner products over d (S) and dv (dP). So
  //     |error| <= 16 eps sqrt(n + d + dv) max|ref|       (16: the chain S -> P -> dS -> product)
  // plus, for dQ and dK, a term for the cancellation in dS = P (dP - D), D = rowsum(P dP) =
  // rowsum(dO O_c), which is exact for a row with a single key (true gradient 0): each dS
  // carries an error of a few eps P |D|, and sum_j P_ij = 1 bounds its effect on dQ_i by
  //     16 eps sqrt(dv) scale max|K| max|D|               (dK: max|Q|)
  // with D from the kernel's saved per-map outputs (a magnitude only; O is checked itself).
  // The largest measured error is about 1/15 of its bound (dQ at T = 1), most are 1/30-1/100.
  auto tol = [&](int64_t n) {
    return 16.0 * FLT_EPSILON * std::sqrt(static_cast<double>(n + s.d + dv));
  };
  auto max_abs = [](const std::vector<float>& x) {
    double m = 0;
    for (float e : x) m = std::max(m, std::abs(static_cast<double>(e)));
    return m;
  };
  double d_max = 0;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Pq; ++h)
      for (int64_t cc = 0; cc < s.ncomp; ++cc)
        for (int64_t i = 0; i < s.T; ++i) {
          const float* o = saved.o_maps.data() + (((b * s.Pq + h) * s.ncomp + cc) * s.T + i) * dv;
          const float* g = dO.data() + (b * s.T + i) * s.Pq * dv + h * dv;
          double acc = 0;
          for (int64_t e = 0; e < dv; ++e) acc += static_cast<double>(o[e]) * g[e];
          d_max = std::max(d_max, std::abs(acc));
        }
  const double dp_max = d_max / std::sqrt(static_cast<double>(s.d));
  const struct {
    const char* what;
    Errors e;
    int64_t n;
    double floor;
  } checks[] = {
      {"O", compare(O, O_ref), s.T, 0.0},
      {"dQ", compare(dQ, dQ_ref), s.T, dp_max * max_abs(K)},
      {"dK", compare(dK, dK_ref), s.rep() * s.T, dp_max * max_abs(Q)},
      {"dV", compare(dV, dV_ref), s.rep() * s.T, 0.0},
  };
  for (const auto& ch : checks) {
    const double bound =
        tol(ch.n) * ch.e.ref_max + 16.0 * FLT_EPSILON * std::sqrt(double(dv)) * ch.floor;
    EXPECT_LE(ch.e.abs_err, bound) << ch.what << ": max abs error " << ch.e.abs_err
                                   << ", max |ref| " << ch.e.ref_max << ", bound " << bound;
  }
  if (s.ncomp == 2) {
    // dlambda = -sum(dO * O2), summed in double: its error is inherited from the per-map
    // outputs, each within the O bound, so |error| <= tol(T) * sum |dO| |O| (|O2| ~ |O|).
    double mag = 0;
    for (size_t i = 0; i < dO.size(); ++i) mag += std::abs(dOd[i] * O_ref[i]);
    const double bound = tol(s.T) * mag;
    EXPECT_NEAR(dl, dl_ref, bound) << "dlambda";
  } else {
    EXPECT_EQ(dl, 0.f);
  }
}

std::vector<FlashCase> cases() {
  std::vector<FlashCase> v;
  // Every (T, d, rep, ncomp) at small T (T = 1, 7 inside one block; 63, 64, 65 around its
  // edge), with B alternating so that each T and ncomp sees both B = 1 and B = 2.
  int k = 0;
  for (int64_t T : {1, 7, 63, 64, 65})
    for (int64_t d : {32, 64, 80, 128})
      for (int64_t rep : {1, 2, 4})
        for (int64_t nc : {1, 2}) {
          const int64_t B = 1 + (k + k / 2) % 2;
          ++k;
          // B = 1: one key group, so backward splits key blocks among threads; B = 2: two
          // groups, four (batch, group) items, so backward hands out whole groups.
          const int64_t Pk = B == 1 ? 1 : 2;
          v.push_back({B, T, Pk * rep, Pk, nc, d, T == 65 ? 3.0 : 1.0});
        }
  // Long sequences, fewer heads to stay fast.
  v.push_back({1, 1000, 2, 1, 2, 64, 1.0});
  v.push_back({1, 1000, 2, 1, 2, 64, 3.0});
  v.push_back({2, 1000, 2, 2, 1, 128, 1.0});
  v.push_back({1, 1000, 4, 1, 1, 80, 2.0});
  v.push_back({1, 1000, 1, 1, 2, 32, 1.0});
  // Head widths that are not a multiple of the vector width (scalar column tails).
  v.push_back({1, 130, 2, 1, 2, 20, 1.0});
  v.push_back({2, 97, 3, 3, 1, 5, 1.0});
  // Three groups on two threads: backward splits key blocks, group after group.
  v.push_back({1, 150, 3, 3, 2, 32, 2.0});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, FlashTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return name_of(info.param); });

}  // namespace
}  // namespace difftx
