#pragma once
// An experiment file (experiments/*.json, versioned; a user may copy and edit one): the arms to
// compare, the data, the training budget, the learning rates and seeds, what to measure, the
// paper's figures to put beside ours, and a `quick` patch that runs the same pipeline on tiny
// sizes. docs/experiments.md describes the format and the protocol.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiment/needle.h"
#include "model/config.h"
#include "train/trainer.h"

namespace difftx {

struct ExperimentArm {
  std::string name;
  std::string preset;     // e.g. "small-diff"; with quick, the size prefix becomes quick.size
  nlohmann::json config;  // keys of SPEC section 2 that override the preset's (may be empty)
};

struct PaperFigure {
  std::string claim, paper, where;  // what the paper says, its figure, and where (table/figure)
};

enum class ExperimentKind {
  kLanguageModel,  // arms trained on text, measured by validation loss (lm, ablations, quant)
  kNeedle,         // arms trained on multi-needle retrieval, measured by accuracy (needle.h)
};

struct ExperimentSpec {
  ExperimentKind kind = ExperimentKind::kLanguageModel;
  NeedleSpec needle;             // kNeedle: the task's data
  std::string name, title, question;
  int64_t version = 1;
  std::string train_data, val_data, tokenizer = "byte";
  TrainOptions train;            // steps, batch, seq, warmup, eval_every, eval_windows, ...
  std::vector<double> lrs;       // a sweep: every arm at every rate, the best per arm reported
  std::vector<uint64_t> seeds;   // every (arm, rate) at every seed
  int64_t eval_tokens = 0;       // validation tokens scored at the end (0: all)
  int64_t outlier_windows = 0;   // validation windows of seq tokens for the activation
                                 // outliers of Table 5 (0: not measured)
  std::vector<int> quant_bits;   // widths of the quantised attention logits (Fig. 8) at which
                                 // the validation loss is measured again (empty: none)
  int64_t quant_tokens = 0;      // validation tokens scored at each width (0: eval_tokens)
  std::vector<ExperimentArm> arms;
  std::string baseline;          // the arm every other is compared with
  std::vector<PaperFigure> paper;
  std::string source;            // where the spec came from (for messages and the report)
};

// Parses an experiment file; `quick` applies its "quick" patch first (a JSON merge patch over
// the file, plus "size": the preset size of every arm). `cache` replaces "${cache}" in data
// paths. Throws Error naming `where` and the key.
ExperimentSpec parse_experiment(const std::string& json_text, const std::string& where,
                                bool quick, const std::string& cache);

// The experiment files built into difftx (experiments/*.json at build time): name -> text.
const std::vector<std::pair<std::string, std::string>>& builtin_experiments();

// The config of an arm: its preset at the tokenizer's vocabulary, with the overrides.
Config arm_config(const ExperimentArm& arm, int64_t vocab_size, const std::string& where);

}  // namespace difftx
