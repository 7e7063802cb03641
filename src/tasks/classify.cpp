#include "tasks/classify.h"

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/presets.h"
#include "tasks/baseline.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {

// The classifier and its data as a TaskModel.
class ClassifyTask : public TaskModel {
 public:
  ClassifyTask(Classifier& c, const ClassificationData& train, const ClassificationData* val,
               bool balanced)
      : c_(c), model_grads_(c.model->layout.total), head_grads_(c.head_layout.total, 0.f) {
    train_ids_ = encode_texts(c_, train.examples);
    train_labels_ = label_indices(train, c_.labels);
    weights_ = class_weights(train_labels_, c_.head.classes, balanced);
    if (val) {
      val_ids_ = encode_texts(c_, val->examples);
      val_labels_ = label_indices(*val, c_.labels);
    }
  }
  std::vector<ParamGroup> groups() override {
    return {{"model", &c_.model->layout, c_.model->params.data(), model_grads_.data()},
            {"head", &c_.head_layout, c_.head_params.data(), head_grads_.data()}};
  }
  int64_t train_examples() const override { return static_cast<int64_t>(train_ids_.size()); }
  double loss_and_grads(const std::vector<int64_t>& batch, uint64_t seed,
                        int64_t* tokens) override {
    Rng rng(seed);
    classifier_forward(c_, train_ids_, batch, pass_, &rng);
    std::vector<int> y;
    for (int64_t i : batch) {
      y.push_back(train_labels_[static_cast<size_t>(i)]);
      *tokens += static_cast<int64_t>(train_ids_[static_cast<size_t>(i)].size());
    }
    std::vector<float> dlogits(pass_.head.logits.size());
    const double loss = weighted_cross_entropy(pass_.head.logits.data(), y.data(), weights_.data(),
                                               pass_.B, c_.head.classes, dlogits.data());
    classifier_backward(c_, pass_, dlogits.data(), model_grads_.data(), head_grads_.data());
    return loss;
  }
  bool has_validation() const override { return !val_ids_.empty(); }
  Validation validate() override {
    const Predictions p = classify_all(c_, val_ids_, 16, &val_labels_);
    const ClassificationMetrics m = classification_metrics(val_labels_, p.classes, c_.labels);
    char buf[96];
    std::snprintf(buf, sizeof buf, "val macro_f1 %.4f accuracy %.4f loss %.4f", m.macro_f1,
                  m.accuracy, p.loss);
    return {m.macro_f1, p.loss, buf};
  }
  void save_files(const std::string& dir) const override { save_classifier(dir, c_); }

 private:
  Classifier& c_;
  AlignedFloats model_grads_;
  std::vector<float> head_grads_;
  std::vector<std::vector<int32_t>> train_ids_, val_ids_;
  std::vector<int> train_labels_, val_labels_;
  std::vector<double> weights_;
  ClassifierPass pass_;
};

// The base model of a new classifier.
std::pair<std::unique_ptr<Model>, std::unique_ptr<Tokenizer>> base_model(
    const ClassifyTrainRequest& r) {
  const int given = !r.init_from.empty() + !r.preset.empty() + !r.config.empty();
  check(given == 1, "classify train needs exactly one of --init-from DIR (a trained language "
        "model), --preset NAME or --config FILE.json");
  if (!r.init_from.empty()) return {load_model(r.init_from), load_tokenizer(r.init_from)};
  auto tok = make_tokenizer(r.tokenizer);
  const Config cfg = !r.preset.empty()
      ? preset_config(r.preset, tok->vocab_size())
      : parse_config(read_file_text(r.config), r.config, LayoutDefaults::kOfficial);
  check(cfg.vocab_size == tok->vocab_size(), r.config, ": vocab_size ", cfg.vocab_size,
        " differs from the tokenizer's ", tok->vocab_size());
  auto model = std::make_unique<Model>(cfg);
  init_parameters(*model, r.opts.seed);
  return {std::move(model), std::move(tok)};
}

nlohmann::json identity_of(const Classifier& c, const ClassificationData& train,
                           const ClassificationData* val, bool balanced) {
  return {{"task", "classify"},
          {"train", to_json_absolute(train.file)},
          {"val", val ? to_json_absolute(val->file) : nlohmann::json()},
          {"labels", c.labels},
          {"head", head_config_to_json(c.head)},
          {"seq", c.seq},
          {"class_weights", balanced ? "balanced" : "none"},
          {"config", nlohmann::json::parse(config_to_json(c.model->config))}};
}

nlohmann::json metrics_json(const ClassificationMetrics& m, double seconds, int64_t tokens) {
  nlohmann::json j = to_json(m);
  const double n = static_cast<double>(m.examples);
  j["examples_per_s"] = seconds > 0 ? n / seconds : 0.0;
  j["tokens_per_s"] = seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0;
  j["ms_per_example"] = n > 0 ? 1000.0 * seconds / n : 0.0;
  return j;
}

}  // namespace

TaskRunResult classify_train(const ClassifyTrainRequest& r, const TaskRunObserver& obs) {
  if (r.resume) {
    const nlohmann::json stored = TaskRun::stored_identity(r.out).at("identity");
    check(stored.value("task", "") == "classify", r.out, " is not a classification run");
    Classifier c = load_classifier(r.out);
    const auto train = read_classification_data(stored.at("train").at("path").get<std::string>());
    std::unique_ptr<ClassificationData> val;
    if (!stored.at("val").is_null())
      val = std::make_unique<ClassificationData>(
          read_classification_data(stored.at("val").at("path").get<std::string>()));
    const bool balanced = stored.value("class_weights", "none") == "balanced";
    c.train_data = to_json_absolute(train.file);
    ClassifyTask task(c, train, val.get(), balanced);
    auto run = TaskRun::resume(task, r.out, identity_of(c, train, val.get(), balanced),
                               r.resume_steps);
    return run->train(obs);
  }
  const auto train = read_classification_data(r.data);
  std::unique_ptr<ClassificationData> val;
  if (!r.val.empty()) val = std::make_unique<ClassificationData>(read_classification_data(r.val));
  auto labels = class_labels(train);
  if (val) label_indices(*val, labels);  // a label seen only in validation data: an Error
  auto [model, tok] = base_model(r);
  Classifier c = make_classifier(std::move(model), std::move(tok), r.head, std::move(labels),
                                 r.seq, r.opts.seed);
  c.train_data = to_json_absolute(train.file);
  ClassifyTask task(c, train, val.get(), r.balanced);
  TaskRun run(task, r.out, r.opts, identity_of(c, train, val.get(), r.balanced));
  return run.train(obs);
}

nlohmann::json baseline_eval(const std::string& train_path, const std::string& data_path) {
  const auto train = read_classification_data(train_path);
  const auto data = read_classification_data(data_path);
  const auto labels = class_labels(train);
  const auto y = label_indices(data, labels);
  const auto t0 = std::chrono::steady_clock::now();
  const NaiveBayes nb(train.examples, label_indices(train, labels),
                      static_cast<int64_t>(labels.size()));
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<int> pred;
  for (const auto& e : data.examples) pred.push_back(nb.predict(e.text));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  nlohmann::json j = metrics_json(classification_metrics(y, pred, labels), secs, 0);
  j.erase("tokens_per_s");
  j["method"] = "multinomial naive Bayes, bag of words (ROUGE tokens), alpha 1";
  j["train"] = to_json(train.file);
  j["data"] = to_json(data.file);
  j["vocabulary"] = nb.vocabulary();
  j["train_seconds"] = std::chrono::duration<double>(t1 - t0).count();
  return j;
}

nlohmann::json classify_eval(const ClassifyEvalRequest& r) {
  const Classifier c = load_classifier(r.model);
  const auto data = read_classification_data(r.data);
  const auto y = label_indices(data, c.labels);
  const auto ids = encode_texts(c, data.examples);
  const Predictions p = classify_all(c, ids, r.batch, &y);
  nlohmann::json j = metrics_json(classification_metrics(y, p.classes, c.labels), p.seconds, p.tokens);
  j["loss"] = p.loss;
  nlohmann::json head{{"task", "classify"}, {"model", r.model}, {"data", to_json(data.file)}};
  head.update(j);
  j = std::move(head);
  if (r.baseline) {
    std::string train = r.baseline_train;
    if (train.empty()) {
      check(c.train_data.is_object() && c.train_data.contains("path"), r.model,
            " does not record its training file; give --baseline-train FILE");
      train = c.train_data.at("path").get<std::string>();
    }
    j["baseline"] = baseline_eval(train, r.data);
    if (r.baseline_train.empty())
      check(j["baseline"]["train"]["sha256"] == c.train_data.at("sha256"), train,
            " changed since the classifier was trained on it; give --baseline-train FILE");
  }
  return j;
}

std::string classify_predict(const std::string& model, const std::string& data_path,
                             int64_t batch) {
  const Classifier c = load_classifier(model);
  const auto data = read_classification_data(data_path, false);
  const auto ids = encode_texts(c, data.examples);
  const Predictions p = classify_all(c, ids, batch, nullptr);
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    nlohmann::json probs = nlohmann::json::object();
    for (size_t k = 0; k < c.labels.size(); ++k) probs[c.labels[k]] = p.probs[i][k];
    out += nlohmann::json{{"label", c.labels[static_cast<size_t>(p.classes[i])]}, {"probs", probs}}.dump();
    out += '\n';
  }
  return out;
}

}  // namespace difftx
