#include "tasks/baseline.h"

#include <cmath>

#include "core/error.h"
#include "tasks/metrics.h"

namespace difftx {

NaiveBayes::NaiveBayes(const std::vector<TextExample>& examples, const std::vector<int>& classes,
                       int64_t K, double alpha) {
  check(examples.size() == classes.size() && K >= 2, "naive Bayes: bad training data");
  std::vector<std::unordered_map<int64_t, int64_t>> counts(static_cast<size_t>(K));
  std::vector<int64_t> docs(static_cast<size_t>(K), 0);
  for (size_t i = 0; i < examples.size(); ++i) {
    ++docs[static_cast<size_t>(classes[i])];
    for (const std::string& w : rouge_tokens(examples[i].text)) {
      const auto it = vocab_.emplace(w, static_cast<int64_t>(vocab_.size())).first;
      ++counts[static_cast<size_t>(classes[i])][it->second];
    }
  }
  const double V = static_cast<double>(vocab_.size());
  log_prior_.resize(static_cast<size_t>(K));
  log_like_.assign(static_cast<size_t>(K), std::vector<double>(vocab_.size()));
  for (int64_t k = 0; k < K; ++k) {
    // A class without training documents can never win.
    log_prior_[static_cast<size_t>(k)] = docs[static_cast<size_t>(k)] > 0
        ? std::log(static_cast<double>(docs[static_cast<size_t>(k)]) / static_cast<double>(examples.size()))
        : -INFINITY;
    double total = 0;
    for (const auto& [w, n] : counts[static_cast<size_t>(k)]) total += static_cast<double>(n);
    const double denom = std::log(total + alpha * V);
    auto& ll = log_like_[static_cast<size_t>(k)];
    for (size_t w = 0; w < ll.size(); ++w) ll[w] = std::log(alpha) - denom;
    for (const auto& [w, n] : counts[static_cast<size_t>(k)])
      ll[static_cast<size_t>(w)] = std::log(static_cast<double>(n) + alpha) - denom;
  }
}

int NaiveBayes::predict(const std::string& text) const {
  std::vector<double> score = log_prior_;
  for (const std::string& w : rouge_tokens(text)) {
    const auto it = vocab_.find(w);
    if (it == vocab_.end()) continue;  // words never seen in training carry no evidence
    for (size_t k = 0; k < score.size(); ++k) score[k] += log_like_[k][static_cast<size_t>(it->second)];
  }
  int best = 0;
  for (size_t k = 1; k < score.size(); ++k)
    if (score[k] > score[static_cast<size_t>(best)]) best = static_cast<int>(k);
  return best;
}

}  // namespace difftx
