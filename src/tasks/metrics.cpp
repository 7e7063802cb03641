#include "tasks/metrics.h"

#include <algorithm>
#include <map>

#include "core/error.h"

namespace difftx {
namespace {

double f_measure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

double ratio(int64_t num, int64_t den) { return den > 0 ? static_cast<double>(num) / den : 0.0; }

std::map<std::vector<std::string>, int64_t> ngram_counts(const std::vector<std::string>& toks,
                                                         size_t n) {
  std::map<std::vector<std::string>, int64_t> c;
  for (size_t i = 0; i + n <= toks.size(); ++i)
    ++c[std::vector<std::string>(toks.begin() + static_cast<std::ptrdiff_t>(i),
                                 toks.begin() + static_cast<std::ptrdiff_t>(i + n))];
  return c;
}

double rouge_n(const std::vector<std::string>& cand, const std::vector<std::string>& ref,
               size_t n) {
  const auto cc = ngram_counts(cand, n), rc = ngram_counts(ref, n);
  int64_t overlap = 0, cand_total = 0, ref_total = 0;
  for (const auto& [g, k] : cc) {
    cand_total += k;
    const auto it = rc.find(g);
    if (it != rc.end()) overlap += std::min(k, it->second);
  }
  for (const auto& [g, k] : rc) ref_total += k;
  return f_measure(ratio(overlap, cand_total), ratio(overlap, ref_total));
}

// Length of the longest common subsequence, one row of the table at a time.
int64_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<int64_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

ClassificationMetrics classification_metrics(const std::vector<int>& truth,
                                             const std::vector<int>& predicted,
                                             const std::vector<std::string>& labels) {
  check(truth.size() == predicted.size(), "classification metrics: ", truth.size(),
        " true labels but ", predicted.size(), " predictions");
  const int k = static_cast<int>(labels.size());
  ClassificationMetrics m;
  m.examples = static_cast<int64_t>(truth.size());
  m.confusion.assign(static_cast<size_t>(k), std::vector<int64_t>(static_cast<size_t>(k), 0));
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    check(truth[i] >= 0 && truth[i] < k && predicted[i] >= 0 && predicted[i] < k,
          "classification metrics: class index out of range [0, ", k, ") at example ", i);
    ++m.confusion[static_cast<size_t>(truth[i])][static_cast<size_t>(predicted[i])];
    correct += truth[i] == predicted[i];
  }
  m.accuracy = ratio(correct, m.examples);
  double f1_sum = 0;
  int present = 0;
  for (int c = 0; c < k; ++c) {
    ClassScores s;
    s.label = labels[static_cast<size_t>(c)];
    const int64_t tp = m.confusion[static_cast<size_t>(c)][static_cast<size_t>(c)];
    for (int o = 0; o < k; ++o) {
      s.support += m.confusion[static_cast<size_t>(c)][static_cast<size_t>(o)];
      s.predicted += m.confusion[static_cast<size_t>(o)][static_cast<size_t>(c)];
    }
    s.precision = ratio(tp, s.predicted);
    s.recall = ratio(tp, s.support);
    s.f1 = f_measure(s.precision, s.recall);
    if (s.support > 0 || s.predicted > 0) {
      f1_sum += s.f1;
      ++present;
    }
    m.per_class.push_back(s);
  }
  m.macro_f1 = present > 0 ? f1_sum / present : 0.0;
  return m;
}

nlohmann::json to_json(const ClassificationMetrics& m) {
  nlohmann::json per = nlohmann::json::object(), labels = nlohmann::json::array();
  for (const ClassScores& s : m.per_class) {
    per[s.label] = {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1},
                    {"support", s.support}};
    labels.push_back(s.label);
  }
  return {{"examples", m.examples}, {"accuracy", m.accuracy}, {"macro_f1", m.macro_f1},
          {"per_class", per},       {"labels", labels},       {"confusion", m.confusion}};
}

std::vector<std::string> rouge_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (const char ch : text) {
    char c = ch;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(c);
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

RougeScores rouge(const std::string& candidate, const std::string& reference) {
  const auto cand = rouge_tokens(candidate), ref = rouge_tokens(reference);
  RougeScores s;
  s.rouge1 = rouge_n(cand, ref, 1);
  s.rouge2 = rouge_n(cand, ref, 2);
  const int64_t lcs = lcs_length(cand, ref);
  s.rougeL = f_measure(ratio(lcs, static_cast<int64_t>(cand.size())),
                       ratio(lcs, static_cast<int64_t>(ref.size())));
  return s;
}

void RougeTotals::add(const RougeScores& s) {
  sum.rouge1 += s.rouge1;
  sum.rouge2 += s.rouge2;
  sum.rougeL += s.rougeL;
  ++pairs;
}

RougeScores RougeTotals::mean() const {
  if (pairs == 0) return {};
  const double n = static_cast<double>(pairs);
  return {sum.rouge1 / n, sum.rouge2 / n, sum.rougeL / n};
}

std::string lead_words(const std::string& document, int64_t k) {
  std::string out;
  int64_t words = 0;
  size_t i = 0;
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (i < document.size() && words < k) {
    while (i < document.size() && space(document[i])) ++i;
    const size_t start = i;
    while (i < document.size() && !space(document[i])) ++i;
    if (i == start) break;
    if (!out.empty()) out.push_back(' ');
    out.append(document, start, i - start);
    ++words;
  }
  return out;
}

}  // namespace difftx
