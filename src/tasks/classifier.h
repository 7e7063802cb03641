#pragma once
// A text classifier: a difftx language model (any model directory), its tokenizer and a
// classification head (classifier_head.h). A classifier directory is a model directory plus
//   classifier.json         {"format": "difftx-classifier", "labels": [...], "seq": N,
//                            "head": ..., "pooling": ..., ..., "train_data": {path, sha256}}
//   classifier.safetensors  the head's tensors
// so `difftx classify eval|predict --model DIR` works from the directory alone; a model
// directory without classifier.json has no classification head (an Error).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/tokenizer.h"
#include "model/transformer.h"
#include "tasks/classifier_head.h"
#include "tasks/metrics.h"
#include "tasks/task_data.h"

namespace difftx {

struct Classifier {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  HeadConfig head;
  ParamLayout head_layout;
  std::vector<float> head_params;
  std::vector<std::string> labels;  // sorted; class i is labels[i]
  int64_t seq = 256;                // texts are cut to their first seq tokens
  nlohmann::json train_data;        // {path, sha256} of the training file (for --baseline)

  static constexpr const char* kDescriptor = "classifier.json";
  static constexpr const char* kWeights = "classifier.safetensors";
};

// A new head on `model`, initialised from seed.
Classifier make_classifier(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tok,
                           HeadConfig head, std::vector<std::string> labels, int64_t seq,
                           uint64_t seed);
// Throws Error naming the directory when it has no classification head or a damaged one.
Classifier load_classifier(const std::string& dir);
// Model files, tokenizer and the two classifier files, each atomically.
void save_classifier(const std::string& dir, const Classifier& c);

// Token ids of each text: its first c.seq tokens (at least one).
std::vector<std::vector<int32_t>> encode_texts(const Classifier& c,
                                               const std::vector<TextExample>& examples);

// One pass over a batch of texts: the LM (keeping what backward needs when training), the
// final norm, the pooling and the head.
struct ClassifierPass {
  int64_t B = 0, T = 0;
  std::vector<int64_t> lengths;
  Activations acts;
  std::vector<float> xn, inv_rms;  // final norm of every position [B*T, C], [B*T]
  std::vector<float> pooled;       // [B, C]
  HeadPass head;
};

// Logits [B, classes] of the texts ids[idx[0..B)] into pass.head.logits. dropout_rng
// non-null: a training pass (dropout on, activations kept for classifier_backward).
void classifier_forward(const Classifier& c, const std::vector<std::vector<int32_t>>& ids,
                        const std::vector<int64_t>& idx, ClassifierPass& pass, Rng* dropout_rng);
// dlogits [B, classes] -> gradients added into model_grads (model layout) and head_grads.
void classifier_backward(const Classifier& c, ClassifierPass& pass, const float* dlogits,
                         float* model_grads, float* head_grads);

// Weighted mean cross-entropy over B rows (weights[class], sum w_{y_b} in the denominator, as
// PyTorch's CrossEntropyLoss(weight=...)); writes d(loss)/d(logits) when dlogits is non-null.
double weighted_cross_entropy(const float* logits, const int* labels, const double* weights,
                              int64_t B, int64_t K, float* dlogits);

// "balanced" class weights n / (K * n_c) (scikit-learn's), or all 1 for "none".
std::vector<double> class_weights(const std::vector<int>& labels, int64_t K, bool balanced);

struct Predictions {
  std::vector<int> classes;
  std::vector<std::vector<float>> probs;  // softmax per example
  double loss = 0;                        // unweighted mean cross-entropy (with truth)
  double seconds = 0;
  int64_t tokens = 0;
};

// Predictions for every text, in batches of texts of similar length. truth may be null.
Predictions classify_all(const Classifier& c, const std::vector<std::vector<int32_t>>& ids,
                         int64_t batch, const std::vector<int>* truth);

}  // namespace difftx
