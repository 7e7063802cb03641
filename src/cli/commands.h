#pragma once
// Each subcommand registers its flags on a CLI11 sub-app and returns the function that runs
// it after parsing. Subcommands only parse, call the library and print.
#include <functional>

#include <CLI/CLI.hpp>

namespace difftx::cli {

using Runner = std::function<int()>;

Runner add_init(CLI::App& app);
Runner add_inspect(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_train(CLI::App& app);
Runner add_eval(CLI::App& app);
Runner add_generate(CLI::App& app);
Runner add_plot(CLI::App& app);
Runner add_tokenizer(CLI::App& app);
Runner add_attention(CLI::App& app);
Runner add_experiment(CLI::App& app);
Runner add_convert(CLI::App& app);
Runner add_classify(CLI::App& app);
Runner add_summarize(CLI::App& app);
Runner add_evaluate(CLI::App& app);
Runner add_serve(CLI::App& app);

}  // namespace difftx::cli
