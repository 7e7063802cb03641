// Every op's backward against central finite differences in double precision, on random
// inputs of awkward sizes. Each check differentiates L = sum(r * op(x)) for a random r.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/pair_combine.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "test_util.h"

namespace difftx {
namespace {
using Vec = std::vector<double>;

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Compares `analytic` with central differences of loss() as x is perturbed in place.
void expect_gradient(const std::string& what, Vec& x, const Vec& analytic,
                     const std::function<double()>& loss, double tol = 1e-6) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    ASSERT_NEAR(analytic[i], numeric, tol * std::max(1.0, std::abs(numeric)))
        << what << "[" << i << "]";
  }
}

TEST(OpsGrad, RmsNormWithWeightAndScale) {
  for (const bool with_weight : {true, false}) {
    const int64_t rows = 3, n = 10;
    Rng rng(1);
    Vec x = test::random_vector<double>(rows * n, rng), w = test::random_vector<double>(n, rng);
    const Vec r = test::random_vector<double>(rows * n, rng);
    const double scale = 0.7, eps = 1e-5;
    Vec y(rows * n), inv(rows);
    auto loss = [&] {
      rmsnorm_forward(x.data(), with_weight ? w.data() : nullptr, scale, eps, y.data(),
                      inv.data(), rows, n);
      return dot(r, y);
    };
    loss();
    Vec dx(rows * n, 0.0), dw(n, 0.0);
    rmsnorm_backward(r.data(), x.data(), with_weight ? w.data() : nullptr, scale, inv.data(),
                     dx.data(), dw.data(), rows, n);
    expect_gradient("dx", x, dx, loss);
    if (with_weight) expect_gradient("dw", w, dw, loss);
  }
}

TEST(OpsGrad, SwiGlu) {
  const int64_t rows = 5, f = 7;
  Rng rng(2);
  Vec gu = test::random_vector<double>(rows * 2 * f, rng, 2.0);
  const Vec r = test::random_vector<double>(rows * f, rng);
  Vec act(rows * f), dgu(rows * 2 * f);
  auto loss = [&] {
    swiglu_forward(gu.data(), act.data(), rows, f);
    return dot(r, act);
  };
  swiglu_backward(gu.data(), r.data(), dgu.data(), rows, f);
  expect_gradient("dgu", gu, dgu, loss);
}

// DIFF V2's pair combine O_h = a_{2h} - sigmoid(z_h) a_{2h+1}: gradients into the attention
// outputs of both sub-heads and into the lambda logits z.
TEST(OpsGrad, PairCombine) {
  const int64_t rows = 3, n = 4, d = 5;
  Rng rng(12);
  Vec pre = test::random_vector<double>(rows * 2 * n * d, rng);
  Vec z = test::random_vector<double>(rows * n, rng, 2.0);
  const Vec r = test::random_vector<double>(rows * n * d, rng);
  Vec lambda(rows * n), out(rows * n * d), dpre(pre.size()), dz(z.size());
  auto loss = [&] {
    pair_lambda_forward(z.data(), lambda.data(), rows * n);
    pair_combine_forward(pre.data(), lambda.data(), out.data(), rows, n, d);
    return dot(r, out);
  };
  loss();
  pair_combine_backward(r.data(), pre.data(), lambda.data(), dpre.data(), dz.data(), rows, n, d);
  expect_gradient("dpre", pre, dpre, loss);
  expect_gradient("dz", z, dz, loss);
}

TEST(OpsGrad, CrossEntropyWithIgnoredRow) {
  const int64_t rows = 4, vocab = 11;
  Rng rng(3);
  Vec logits = test::random_vector<double>(rows * vocab, rng, 3.0);
  const std::vector<int32_t> targets{3, -1, 10, 0};
  auto loss = [&] { return cross_entropy_forward(logits.data(), targets.data(), rows, vocab, nullptr); };
  Vec dlogits(rows * vocab);
  cross_entropy_backward(logits.data(), targets.data(), rows, vocab, 1.0, dlogits.data());
  expect_gradient("dlogits", logits, dlogits, loss);
  int64_t counted = 0;
  cross_entropy_forward(logits.data(), targets.data(), rows, vocab, &counted);
  EXPECT_EQ(counted, 3);
}

TEST(OpsGrad, EmbeddingWithRepeatedTokens) {
  const int64_t vocab = 6, dim = 70, rows = 5;  // dim > one column block of the backward
  Rng rng(4);
  Vec table = test::random_vector<double>(vocab * dim, rng);
  const std::vector<int32_t> tokens{2, 5, 2, 0, 2};
  const Vec r = test::random_vector<double>(rows * dim, rng);
  Vec out(rows * dim), dtable(vocab * dim, 0.0);
  auto loss = [&] {
    embedding_forward(table.data(), tokens.data(), out.data(), rows, dim);
    return dot(r, out);
  };
  embedding_backward(r.data(), tokens.data(), dtable.data(), rows, dim);
  expect_gradient("dtable", table, dtable, loss);
}

TEST(OpsGrad, Linear) {
  const int64_t M = 3, N = 5, K = 7;
  Rng rng(5);
  Vec X = test::random_vector<double>(M * K, rng), W = test::random_vector<double>(N * K, rng);
  const Vec r = test::random_vector<double>(M * N, rng);
  Vec Y(M * N), dX(M * K), dW(N * K, 0.0);
  auto loss = [&] {
    linear_forward(X.data(), W.data(), Y.data(), M, N, K);
    return dot(r, Y);
  };
  linear_backward(r.data(), X.data(), W.data(), dX.data(), dW.data(), M, N, K, false);
  expect_gradient("dX", X, dX, loss);
  expect_gradient("dW", W, dW, loss);
}

TEST(OpsGrad, Lambda) {
  const int64_t d = 10;
  Rng rng(6);
  Vec q1 = test::random_vector<double>(d, rng, 0.3), k1 = test::random_vector<double>(d, rng, 0.3);
  Vec q2 = test::random_vector<double>(d, rng, 0.3), k2 = test::random_vector<double>(d, rng, 0.3);
  auto loss = [&] { return 1.7 * lambda_forward(q1.data(), k1.data(), q2.data(), k2.data(), d, 0.2); };
  Vec g1(d, 0.0), g2(d, 0.0), g3(d, 0.0), g4(d, 0.0);
  lambda_backward(1.7, q1.data(), k1.data(), q2.data(), k2.data(), d, g1.data(), g2.data(),
                  g3.data(), g4.data());
  expect_gradient("dq1", q1, g1, loss);
  expect_gradient("dk1", k1, g2, loss);
  expect_gradient("dq2", q2, g3, loss);
  expect_gradient("dk2", k2, g4, loss);
}

struct HeadCase {
  int64_t B, T, Pq, Pk, ncomp, d;
  bool split, rope_interleaved;
};

std::string describe(const HeadCase& c) {
  return "B" + std::to_string(c.B) + " T" + std::to_string(c.T) + " Pq" + std::to_string(c.Pq) +
         " Pk" + std::to_string(c.Pk) + " ncomp" + std::to_string(c.ncomp) + " d" +
         std::to_string(c.d) + (c.split ? " split" : " interleaved") +
         (c.rope_interleaved ? " rope-gptj" : " rope-half");
}

HeadGeometry dims_of(const HeadCase& c) {
  HeadGeometry a;
  a.B = c.B;
  a.T = c.T;
  a.Pq = c.Pq;
  a.Pk = c.Pk;
  a.ncomp = c.ncomp;
  a.d = c.d;
  return a;
}

const HeadCase kHeadCases[] = {
    {1, 1, 2, 2, 2, 10, false, true},   // T = 1
    {2, 5, 2, 1, 2, 10, true, false},   // odd T, GQA rep 2, split
    {1, 7, 4, 1, 2, 20, false, true},   // GQA rep 4, head_dim 20
    {1, 6, 3, 3, 1, 10, false, false},  // standard attention
    {2, 3, 4, 2, 1, 20, false, true},   // standard with GQA
};

TEST(OpsGrad, QkvToHeadsWithRope) {
  for (const HeadCase& c : kHeadCases) {
    const HeadGeometry a = dims_of(c);
    const int64_t M = c.B * c.T, nq = c.Pq * c.ncomp, nk = c.Pk * c.ncomp;
    const RopeTable rope = make_rope_table(c.T, c.d, 100.0, c.rope_interleaved);
    Rng rng(7);
    Vec qkv = test::random_vector<double>(M * (nq + 2 * nk) * c.d, rng);
    const Vec rQ = test::random_vector<double>(M * nq * c.d, rng);
    const Vec rK = test::random_vector<double>(M * nk * c.d, rng);
    const Vec rV = test::random_vector<double>(M * nk * c.d, rng);
    Vec Q(rQ.size()), K(rK.size()), V(rV.size()), dqkv(qkv.size());
    auto loss = [&] {
      qkv_to_heads(a, HeadMapping{c.split}, rope, qkv.data(), Q.data(), K.data(), V.data());
      return dot(rQ, Q) + dot(rK, K) + dot(rV, V);
    };
    qkv_to_heads_backward(a, HeadMapping{c.split}, rope, rQ.data(), rK.data(), rV.data(),
                          dqkv.data());
    expect_gradient("dqkv " + describe(c), qkv, dqkv, loss);
  }
}

TEST(OpsGrad, AttentionReference) {
  for (const HeadCase& c : kHeadCases) {
    const HeadGeometry a = dims_of(c);
    Rng rng(8);
    Vec Q = test::random_vector<double>(c.B * c.Pq * c.ncomp * c.T * c.d, rng);
    Vec K = test::random_vector<double>(c.B * c.Pk * c.ncomp * c.T * c.d, rng);
    Vec V = test::random_vector<double>(c.B * c.Pk * c.T * a.dv(), rng);
    Vec lambda{0.45};
    const Vec r = test::random_vector<double>(c.B * c.T * c.Pq * a.dv(), rng);
    Vec O(r.size());
    AttentionSaved<double> saved;
    auto loss = [&] {
      attention_forward_reference(a, Q.data(), K.data(), V.data(), lambda[0], O.data(), saved);
      return dot(r, O);
    };
    loss();
    Vec dQ(Q.size()), dK(K.size()), dV(V.size());
    const double dlambda = attention_backward_reference(a, Q.data(), K.data(), V.data(),
                                                        lambda[0], saved, r.data(), dQ.data(),
                                                        dK.data(), dV.data());
    const std::string what = describe(c);
    expect_gradient("dQ " + what, Q, dQ, loss);
    expect_gradient("dK " + what, K, dK, loss);
    expect_gradient("dV " + what, V, dV, loss);
    if (c.ncomp == 2) expect_gradient("dlambda " + what, lambda, Vec{dlambda}, loss);
  }
}

// The maps the reference saves are proper causal softmax rows.
TEST(OpsGrad, AttentionRowsSumToOneAndAreCausal) {
  const HeadCase c{1, 9, 2, 1, 2, 10, false, true};
  const HeadGeometry a = dims_of(c);
  Rng rng(9);
  const Vec Q = test::random_vector<double>(c.Pq * 2 * c.T * c.d, rng);
  const Vec K = test::random_vector<double>(c.Pk * 2 * c.T * c.d, rng);
  const Vec V = test::random_vector<double>(c.Pk * c.T * a.dv(), rng);
  Vec O(c.T * c.Pq * a.dv());
  AttentionSaved<double> saved;
  attention_forward_reference(a, Q.data(), K.data(), V.data(), 0.3, O.data(), saved);
  for (int64_t m = 0; m < c.Pq * 2; ++m)
    for (int64_t i = 0; i < c.T; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < c.T; ++j) {
        const double p = saved.probs[(m * c.T + i) * c.T + j];
        if (j > i) EXPECT_EQ(p, 0.0);
        sum += p;
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
}

}  // namespace
}  // namespace difftx
