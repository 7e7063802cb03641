#pragma once
// Flags and progress display shared by the task commands (classify, summarize): the
// optimisation flags of a TaskRun and its progress lines on stderr.
#include <string>

#include <CLI/CLI.hpp>

#include "tasks/task_run.h"

namespace difftx::cli {

// --steps --batch --lr --warmup --min-lr-ratio --weight-decay --grad-clip --seed --eval-every
// --patience --save-every, bound to o.
void add_task_train_flags(CLI::App& app, TaskTrainOptions& o);

// A progress bar on a terminal, plain lines otherwise (every log_every steps), and one line per
// validation.
TaskRunObserver task_progress(int64_t log_every);

// Writes text to path atomically, or to stdout when path is "" or "-".
void write_output(const std::string& path, const std::string& text);

}  // namespace difftx::cli
