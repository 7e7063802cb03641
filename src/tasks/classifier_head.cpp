#include "tasks/classifier_head.h"

#include <cmath>

#include "core/error.h"
#include "kernels/matmul.h"

namespace difftx {
namespace {

size_t align16(size_t n) { return (n + 15) / 16 * 16; }

void add_tensor(ParamLayout& L, const std::string& name, std::vector<int64_t> shape,
                ParamKind kind) {
  TensorSpec t;
  t.name = name;
  t.numel = 1;
  for (int64_t d : shape) t.numel *= static_cast<size_t>(d);
  t.shape = std::move(shape);
  t.offset = L.total;
  t.kind = kind;
  L.total = align16(L.total + t.numel);
  L.tensors.push_back(std::move(t));
}

const TensorSpec& tensor(const ParamLayout& L, const char* name) {
  const TensorSpec* t = L.find(name);
  check(t != nullptr, "classification head: no tensor ", name);
  return *t;
}

// Inverted dropout: keeps each value with probability 1 - p and scales it by 1 / (1 - p).
void dropout(std::vector<float>& x, std::vector<float>& mask, double p, Rng* rng) {
  mask.clear();
  if (!rng || p <= 0) return;
  mask.resize(x.size());
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  for (size_t i = 0; i < x.size(); ++i) {
    mask[i] = rng->uniform() < p ? 0.f : keep;
    x[i] *= mask[i];
  }
}

void add_bias(float* y, const float* b, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) y[r * n + j] += b[j];
}

void bias_grad(const float* dy, float* db, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) db[j] += dy[r * n + j];
}

}  // namespace

const char* pooling_name(Pooling p) { return p == Pooling::kLast ? "last" : "mean"; }
Pooling parse_pooling(const std::string& s) {
  if (s == "last") return Pooling::kLast;
  if (s == "mean") return Pooling::kMean;
  detail::fail_field("pooling", " must be \"last\" or \"mean\", got \"", s, "\"");
}
const char* head_kind_name(HeadKind k) { return k == HeadKind::kLinear ? "linear" : "mlp"; }
HeadKind parse_head_kind(const std::string& s) {
  if (s == "linear") return HeadKind::kLinear;
  if (s == "mlp") return HeadKind::kMlp;
  detail::fail_field("head", " must be \"linear\" or \"mlp\", got \"", s, "\"");
}

ParamLayout head_layout(const HeadConfig& h) {
  check(h.input > 0 && h.classes >= 2, "classification head: needs an input width and >= 2 classes");
  ParamLayout L;
  int64_t in = h.input;
  if (h.kind == HeadKind::kMlp) {
    check(h.hidden > 0, "classification head: the mlp needs a hidden width > 0");
    add_tensor(L, "score.dense.weight", {h.hidden, h.input}, ParamKind::kMatrix);
    add_tensor(L, "score.dense.bias", {h.hidden}, ParamKind::kNorm);
    in = h.hidden;
  }
  add_tensor(L, "score.weight", {h.classes, in}, ParamKind::kMatrix);
  add_tensor(L, "score.bias", {h.classes}, ParamKind::kNorm);
  return L;
}

void init_head(const HeadConfig& h, const ParamLayout& L, float* params, uint64_t seed) {
  (void)h;
  Rng rng(seed ^ 0x9e3779b97f4a7c15ull);
  for (size_t i = 0; i < L.total; ++i) params[i] = 0.f;
  for (const TensorSpec& t : L.tensors)
    if (t.kind == ParamKind::kMatrix)
      for (size_t i = 0; i < t.numel; ++i) params[t.offset + i] = static_cast<float>(0.02 * rng.normal());
}

void head_forward(const HeadConfig& h, const ParamLayout& L, const float* params,
                  const float* pooled, int64_t rows, HeadPass& p, Rng* rng) {
  p.rows = rows;
  p.in.assign(pooled, pooled + rows * h.input);
  dropout(p.in, p.in_mask, h.dropout, rng);
  const float* x = p.in.data();
  int64_t in = h.input;
  if (h.kind == HeadKind::kMlp) {
    const TensorSpec& w1 = tensor(L, "score.dense.weight");
    const TensorSpec& b1 = tensor(L, "score.dense.bias");
    p.mid_tanh.resize(static_cast<size_t>(rows * h.hidden));
    linear_forward(x, params + w1.offset, p.mid_tanh.data(), rows, h.hidden, h.input);
    add_bias(p.mid_tanh.data(), params + b1.offset, rows, h.hidden);
    for (float& v : p.mid_tanh) v = std::tanh(v);
    p.mid = p.mid_tanh;
    dropout(p.mid, p.mid_mask, h.dropout, rng);
    x = p.mid.data();
    in = h.hidden;
  }
  const TensorSpec& w = tensor(L, "score.weight");
  const TensorSpec& b = tensor(L, "score.bias");
  p.logits.resize(static_cast<size_t>(rows * h.classes));
  linear_forward(x, params + w.offset, p.logits.data(), rows, h.classes, in);
  add_bias(p.logits.data(), params + b.offset, rows, h.classes);
}

void head_backward(const HeadConfig& h, const ParamLayout& L, const float* params,
                   const HeadPass& p, const float* dlogits, float* d_pooled, float* grads) {
  const int64_t rows = p.rows;
  const TensorSpec& w = tensor(L, "score.weight");
  const TensorSpec& b = tensor(L, "score.bias");
  bias_grad(dlogits, grads + b.offset, rows, h.classes);
  std::vector<float> dx;
  if (h.kind == HeadKind::kMlp) {
    const TensorSpec& w1 = tensor(L, "score.dense.weight");
    const TensorSpec& b1 = tensor(L, "score.dense.bias");
    std::vector<float> dmid(static_cast<size_t>(rows * h.hidden));
    linear_backward(dlogits, p.mid.data(), params + w.offset, dmid.data(), grads + w.offset,
                    rows, h.classes, h.hidden, false);
    for (size_t i = 0; i < dmid.size(); ++i) {
      if (!p.mid_mask.empty()) dmid[i] *= p.mid_mask[i];
      dmid[i] *= 1.f - p.mid_tanh[i] * p.mid_tanh[i];
    }
    bias_grad(dmid.data(), grads + b1.offset, rows, h.hidden);
    linear_backward(dmid.data(), p.in.data(), params + w1.offset, d_pooled, grads + w1.offset,
                    rows, h.hidden, h.input, false);
  } else {
    linear_backward(dlogits, p.in.data(), params + w.offset, d_pooled, grads + w.offset, rows,
                    h.classes, h.input, false);
  }
  if (!p.in_mask.empty())
    for (size_t i = 0; i < p.in_mask.size(); ++i) d_pooled[i] *= p.in_mask[i];
}

nlohmann::json head_config_to_json(const HeadConfig& h) {
  return {{"head", head_kind_name(h.kind)}, {"pooling", pooling_name(h.pooling)},
          {"input", h.input}, {"hidden", h.hidden}, {"classes", h.classes},
          {"dropout", h.dropout}};
}

HeadConfig head_config_from_json(const nlohmann::json& j, const std::string& where) {
  HeadConfig h;
  try {
    h.kind = parse_head_kind(j.at("head").get<std::string>());
    h.pooling = parse_pooling(j.at("pooling").get<std::string>());
    h.input = j.at("input").get<int64_t>();
    h.hidden = j.at("hidden").get<int64_t>();
    h.classes = j.at("classes").get<int64_t>();
    h.dropout = j.at("dropout").get<double>();
  } catch (const nlohmann::json::exception& e) {
    detail::fail_with(where, ": bad classification head description (", e.what(), ")");
  }
  check(h.input > 0 && h.classes >= 2 && h.hidden >= 0 && h.dropout >= 0 && h.dropout < 1 &&
            h.classes <= (int64_t{1} << 20) && h.hidden <= (int64_t{1} << 20),
        where, ": classification head sizes out of range");
  return h;
}

}  // namespace difftx
