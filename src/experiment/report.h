#pragma once
// The report of an experiment: OUT/report.md (protocol, results per arm at its best learning
// rate with the spread over seeds, paired differences against the baseline with a 95%
// interval and a verdict, the learning-rate sweep, the paper's figures beside ours, machine,
// commit, commands and wall time) and its figures (OUT/figures/*.png).
#include <string>

#include "experiment/runner.h"

namespace difftx {

// mean, sample standard deviation and the half-width of a 95% t-interval of values.
struct Spread {
  double mean = 0, sd = 0, half95 = 0;
  size_t n = 0;
};
Spread spread_of(const std::vector<double>& values);

// Writes report.md and figures/ (atomically, file by file). `command` is the command line
// that ran the experiment.
void write_experiment_report(const ExperimentResults& results, const std::string& out_dir,
                             const std::string& command);

}  // namespace difftx
