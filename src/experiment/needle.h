#pragma once
// The `needle` experiment (the paper's section 3.4, multi-needle retrieval): a haystack of
// filler text holds N needles "The magic number of CITY is NUMBER." with N distinct cities; the
// question asks for one of them (R = 1), whose needle sits at a chosen depth; the others are
// distractors. A model learns the task as decoder-only question answering (tasks/summarize.h:
// document, separator, answer; the loss only on the answer) and is scored on exact match of
// its greedy answer, by N and by depth bin.
#include <cstdint>
#include <string>
#include <vector>

#include "model/params.h"

namespace difftx {

struct ExperimentSpec;
struct ExperimentArm;
struct ExperimentOptions;
struct RunMeasures;

struct NeedleSpec {
  std::string filler;            // text (file, folder or glob) the haystacks are cut from
  int64_t context_bytes = 512;   // haystack with its needles, before the question
  std::vector<int> needles;      // N values: training draws N uniformly among them
  int depth_bins = 5;            // the queried needle's depth, in equal bins of the haystack
  int64_t train_examples = 20000, val_examples = 200;
  int64_t test_per_cell = 40;    // test examples per (N, depth bin)
  uint64_t data_seed = 1;        // the data, the same for every arm and seed
  // Attention to the queried needle and noise (Table 3), on the first noise_per_cell test
  // examples of every cell (0: not measured).
  int64_t noise_per_cell = 0;
};

struct NeedleExample {
  std::string document, answer;
  int needles = 0, depth_bin = 0;
  // The queried needle "The magic number of CITY is NUMBER." in document, bytes [begin, end).
  int64_t needle_begin = 0, needle_end = 0;
};

// Deterministic examples of one split (0 train, 1 validation, 2 test) from the filler text:
// training and validation draw N and the depth at random; the test holds test_per_cell
// examples for every (N, depth bin). Train haystacks come from the first 90% of the filler,
// validation and test ones from the last 10%. Throws Error when the filler is too short.
std::vector<NeedleExample> needle_examples(const NeedleSpec& spec, const std::string& filler,
                                           int split);

// Writes OUT/data/needle.{train,validation,test}.jsonl ({"document", "summary", "needles",
// "depth_bin"}) unless present, and returns the test examples.
std::vector<NeedleExample> prepare_needle_data(const NeedleSpec& spec, const std::string& out_dir);

// Trains (or resumes) one arm at one rate and seed in dir and scores it on the test examples
// (and, with noise_per_cell, measures the attention on the queried needle); false when stopped
// by options.stop (the run saved its state).
bool needle_run(const ExperimentSpec& spec, const ExperimentArm& arm, double lr, uint64_t seed,
                const std::string& dir, const ExperimentOptions& o,
                const std::vector<NeedleExample>& test, RunMeasures& m);

}  // namespace difftx
