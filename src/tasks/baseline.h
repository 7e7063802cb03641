#pragma once
// The non-neural reference beside every classification number: multinomial naive Bayes on
// bags of words (words as ROUGE tokenises them, metrics.h: lowercased ASCII letter and digit
// runs), Laplace smoothing alpha = 1, trained on the same training split. Ties go to the
// class listed first.
#include <string>
#include <unordered_map>
#include <vector>

#include "tasks/task_data.h"

namespace difftx {

class NaiveBayes {
 public:
  // examples' labels are class indices into `labels`.
  NaiveBayes(const std::vector<TextExample>& examples, const std::vector<int>& classes,
             int64_t num_classes, double alpha = 1.0);
  int predict(const std::string& text) const;
  int64_t vocabulary() const { return static_cast<int64_t>(vocab_.size()); }

 private:
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<double> log_prior_;
  std::vector<std::vector<double>> log_like_;  // [class][word]
};

}  // namespace difftx
