#include "tasks/classifier.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "kernels/rmsnorm.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

// Row-wise softmax of logits [B, K] into probs.
void softmax_rows(const float* logits, int64_t B, int64_t K, std::vector<float>& probs) {
  probs.resize(static_cast<size_t>(B * K));
  for (int64_t b = 0; b < B; ++b) {
    const float* z = logits + b * K;
    const float mx = *std::max_element(z, z + K);
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k] - mx));
    for (int64_t k = 0; k < K; ++k)
      probs[static_cast<size_t>(b * K + k)] = static_cast<float>(std::exp(static_cast<double>(z[k] - mx)) / sum);
  }
}

}  // namespace

Classifier make_classifier(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tok,
                           HeadConfig head, std::vector<std::string> labels, int64_t seq,
                           uint64_t seed) {
  check(model && tok, "classifier: needs a model and a tokenizer");
  check_field(seq >= 1 && seq <= model->config.max_position_embeddings, "seq", " (", seq,
              ") must be in [1, max_position_embeddings = ",
              model->config.max_position_embeddings, "] of the model");
  Classifier c;
  head.input = model->config.hidden_size;
  if (head.kind == HeadKind::kMlp && head.hidden == 0) head.hidden = head.input;
  head.classes = static_cast<int64_t>(labels.size());
  c.head = head;
  c.head_layout = head_layout(head);
  c.head_params.assign(c.head_layout.total, 0.f);
  init_head(head, c.head_layout, c.head_params.data(), seed);
  c.model = std::move(model);
  c.tok = std::move(tok);
  c.labels = std::move(labels);
  c.seq = seq;
  return c;
}

void save_classifier(const std::string& dir, const Classifier& c) {
  fs::create_directories(dir);
  write_model_files(dir, *c.model);
  c.tok->save(dir);
  std::vector<TensorToWrite> tensors;
  for (const TensorSpec& t : c.head_layout.tensors)
    tensors.push_back({t.name, t.shape, c.head_params.data() + t.offset});
  write_safetensors((fs::path(dir) / Classifier::kWeights).string(), tensors);
  nlohmann::json j = head_config_to_json(c.head);
  j["format"] = "difftx-classifier";
  j["labels"] = c.labels;
  j["seq"] = c.seq;
  j["train_data"] = c.train_data;
  write_file_atomic((fs::path(dir) / Classifier::kDescriptor).string(), j.dump(1) + "\n");
}

Classifier load_classifier(const std::string& dir) {
  const std::string desc = (fs::path(dir) / Classifier::kDescriptor).string();
  std::error_code ec;
  check(fs::exists(desc, ec), dir, " has no classification head (no ", Classifier::kDescriptor,
        "); train one with `difftx classify train --init-from ", dir, " --out NEW_DIR`");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_text(desc));
  } catch (const nlohmann::json::parse_error& e) {
    detail::fail_with(desc, ": not JSON (", e.what(), ")");
  }
  check(j.is_object() && j.value("format", "") == "difftx-classifier", desc,
        ": not a difftx classifier descriptor");
  Classifier c;
  c.head = head_config_from_json(j, desc);
  try {
    c.labels = j.at("labels").get<std::vector<std::string>>();
    c.seq = j.at("seq").get<int64_t>();
    c.train_data = j.value("train_data", nlohmann::json());
  } catch (const nlohmann::json::exception& e) {
    detail::fail_with(desc, ": bad labels or seq (", e.what(), ")");
  }
  check(static_cast<int64_t>(c.labels.size()) == c.head.classes &&
            std::is_sorted(c.labels.begin(), c.labels.end()) &&
            std::adjacent_find(c.labels.begin(), c.labels.end()) == c.labels.end(),
        desc, ": the labels must be ", c.head.classes, " distinct names in sorted order");
  c.model = load_model(dir);
  c.tok = load_tokenizer(dir);
  check(c.head.input == c.model->config.hidden_size, desc, ": head input ", c.head.input,
        " differs from the model's hidden_size ", c.model->config.hidden_size);
  check(c.seq >= 1 && c.seq <= c.model->config.max_position_embeddings, desc, ": seq ", c.seq,
        " is out of the model's range");
  c.head_layout = head_layout(c.head);
  c.head_params.assign(c.head_layout.total, 0.f);
  const std::string wpath = (fs::path(dir) / Classifier::kWeights).string();
  const SafetensorsFile f = SafetensorsFile::read(wpath);
  for (const TensorSpec& t : c.head_layout.tensors) {
    const StTensor* st = f.find(t.name);
    check(st && st->shape == t.shape, wpath, ": missing or mis-shaped tensor ", t.name);
    f.to_float(*st, c.head_params.data() + t.offset);
  }
  return c;
}

std::vector<std::vector<int32_t>> encode_texts(const Classifier& c,
                                               const std::vector<TextExample>& examples) {
  std::vector<std::vector<int32_t>> out(examples.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t i = 0; i < examples.size(); ++i) {
    // Only a prefix is encoded (16 bytes per token allowed), which bounds the work on long
    // emails; the first seq tokens of the prefix are those of the text.
    const std::string_view text(examples[i].text);
    auto ids = c.tok->encode(text.substr(0, static_cast<size_t>(c.seq) * 16));
    if (static_cast<int64_t>(ids.size()) > c.seq) ids.resize(static_cast<size_t>(c.seq));
    if (ids.empty()) ids.push_back(c.tok->eos_id() >= 0 ? c.tok->eos_id() : 0);
    out[i] = std::move(ids);
  }
  return out;
}

void classifier_forward(const Classifier& c, const std::vector<std::vector<int32_t>>& ids,
                        const std::vector<int64_t>& idx, ClassifierPass& p, Rng* dropout_rng) {
  const Config& cfg = c.model->config;
  const int64_t B = static_cast<int64_t>(idx.size()), C = cfg.hidden_size;
  p.B = B;
  p.T = 0;
  p.lengths.resize(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    p.lengths[b] = static_cast<int64_t>(ids[static_cast<size_t>(idx[b])].size());
    p.T = std::max(p.T, p.lengths[b]);
  }
  // Padding goes after each text: a causal model's states of the real tokens ignore it.
  std::vector<int32_t> tokens(static_cast<size_t>(B * p.T), 0);
  for (int64_t b = 0; b < B; ++b) {
    const auto& t = ids[static_cast<size_t>(idx[b])];
    std::copy(t.begin(), t.end(), tokens.begin() + b * p.T);
  }
  PassOptions pass;
  pass.keep = dropout_rng ? Keep::kForBackward : Keep::kNothing;
  pass.logits = LogitRows::kSkip;
  forward(*c.model, tokens.data(), nullptr, B, p.T, p.acts, {}, pass);
  const int64_t M = B * p.T;
  p.xn.resize(static_cast<size_t>(M * C));
  p.inv_rms.resize(static_cast<size_t>(M));
  rmsnorm_forward(p.acts.x_final.data(), c.model->at(c.model->layout.final_norm), 1.f,
                  static_cast<float>(cfg.rms_norm_eps), p.xn.data(), p.inv_rms.data(), M, C);
  p.pooled.assign(static_cast<size_t>(B * C), 0.f);
  for (int64_t b = 0; b < B; ++b) {
    float* out = p.pooled.data() + b * C;
    const int64_t len = p.lengths[b];
    if (c.head.pooling == Pooling::kLast) {
      std::copy_n(p.xn.data() + (b * p.T + len - 1) * C, C, out);
    } else {
      for (int64_t t = 0; t < len; ++t)
        for (int64_t k = 0; k < C; ++k) out[k] += p.xn[static_cast<size_t>((b * p.T + t) * C + k)];
      for (int64_t k = 0; k < C; ++k) out[k] /= static_cast<float>(len);
    }
  }
  head_forward(c.head, c.head_layout, c.head_params.data(), p.pooled.data(), B, p.head,
               dropout_rng);
}

void classifier_backward(const Classifier& c, ClassifierPass& p, const float* dlogits,
                         float* model_grads, float* head_grads) {
  const Config& cfg = c.model->config;
  const int64_t B = p.B, T = p.T, C = cfg.hidden_size, M = B * T;
  std::vector<float> dpooled(static_cast<size_t>(B * C));
  head_backward(c.head, c.head_layout, c.head_params.data(), p.head, dlogits, dpooled.data(),
                head_grads);
  std::vector<float> dxn(static_cast<size_t>(M * C), 0.f);
  for (int64_t b = 0; b < B; ++b) {
    const float* g = dpooled.data() + b * C;
    const int64_t len = p.lengths[b];
    if (c.head.pooling == Pooling::kLast) {
      std::copy_n(g, C, dxn.data() + (b * T + len - 1) * C);
    } else {
      for (int64_t t = 0; t < len; ++t)
        for (int64_t k = 0; k < C; ++k)
          dxn[static_cast<size_t>((b * T + t) * C + k)] = g[k] / static_cast<float>(len);
    }
  }
  std::vector<float> dx(static_cast<size_t>(M * C), 0.f);
  rmsnorm_backward(dxn.data(), p.acts.x_final.data(), c.model->at(c.model->layout.final_norm),
                   1.f, p.inv_rms.data(), dx.data(), model_grads + c.model->layout.final_norm,
                   M, C);
  backward_from_stream(*c.model, p.acts, std::move(dx), model_grads);
}

double weighted_cross_entropy(const float* logits, const int* labels, const double* weights,
                              int64_t B, int64_t K, float* dlogits) {
  std::vector<float> probs;
  softmax_rows(logits, B, K, probs);
  double wsum = 0, loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    const double w = weights ? weights[labels[b]] : 1.0;
    wsum += w;
    loss -= w * std::log(std::max(1e-30, static_cast<double>(probs[static_cast<size_t>(b * K + labels[b])])));
  }
  if (dlogits)
    for (int64_t b = 0; b < B; ++b) {
      const double w = (weights ? weights[labels[b]] : 1.0) / wsum;
      for (int64_t k = 0; k < K; ++k)
        dlogits[b * K + k] =
            static_cast<float>(w * (probs[static_cast<size_t>(b * K + k)] - (k == labels[b] ? 1.0 : 0.0)));
    }
  return wsum > 0 ? loss / wsum : 0.0;
}

std::vector<double> class_weights(const std::vector<int>& labels, int64_t K, bool balanced) {
  std::vector<double> w(static_cast<size_t>(K), 1.0);
  if (!balanced) return w;
  std::vector<int64_t> n(static_cast<size_t>(K), 0);
  for (int l : labels) ++n[static_cast<size_t>(l)];
  for (int64_t k = 0; k < K; ++k)
    w[static_cast<size_t>(k)] = n[static_cast<size_t>(k)] > 0
        ? static_cast<double>(labels.size()) / (static_cast<double>(K) * n[static_cast<size_t>(k)])
        : 0.0;
  return w;
}

Predictions classify_all(const Classifier& c, const std::vector<std::vector<int32_t>>& ids,
                         int64_t batch, const std::vector<int>* truth) {
  check_field(batch >= 1, "batch", " must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return ids[a].size() < ids[b].size(); });
  const int64_t K = c.head.classes;
  Predictions out;
  out.classes.assign(ids.size(), 0);
  out.probs.assign(ids.size(), {});
  ClassifierPass pass;
  double loss_sum = 0;
  for (size_t s = 0; s < order.size(); s += static_cast<size_t>(batch)) {
    const std::vector<int64_t> idx(order.begin() + static_cast<std::ptrdiff_t>(s),
                                   order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), s + static_cast<size_t>(batch))));
    classifier_forward(c, ids, idx, pass, nullptr);
    std::vector<float> probs;
    softmax_rows(pass.head.logits.data(), static_cast<int64_t>(idx.size()), K, probs);
    for (size_t b = 0; b < idx.size(); ++b) {
      const float* p = probs.data() + b * static_cast<size_t>(K);
      const size_t i = static_cast<size_t>(idx[b]);
      out.classes[i] = static_cast<int>(std::max_element(p, p + K) - p);
      out.probs[i].assign(p, p + K);
      out.tokens += static_cast<int64_t>(ids[i].size());
      if (truth) loss_sum -= std::log(std::max(1e-30, static_cast<double>(p[(*truth)[i]])));
    }
  }
  out.loss = ids.empty() ? 0.0 : loss_sum / static_cast<double>(ids.size());
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace difftx
