// difftx: the command-line program. Every error ends as one line "difftx: error: ..." on
// stderr and exit status 2.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <new>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/cleanup.h"
#include "core/error.h"

namespace {
int fail(const std::string& message) {
  std::string one_line = message + difftx::cli::held_warnings();
  for (char& ch : one_line)
    if (ch == '\n' || ch == '\r') ch = ' ';
  std::fprintf(stderr, "difftx: error: %s\n", one_line.c_str());
  return 2;
}

// Results printed on stdout must not be lost silently (a full disk, a closed pipe): the
// buffered rest is flushed here and any failed write, now or earlier, is an error.
int finish_stdout(int status) {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    const std::string why = errno != 0 ? std::strerror(errno) : "write error";
    return fail("cannot write the results to standard output: " + why);
  }
  return status;
}
}  // namespace

int main(int argc, char** argv) {
  difftx::cli::hold_warnings();
  CLI::App app{"difftx: the Differential Transformer, trained and run natively on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "difftx 0.1.0");
  std::map<CLI::App*, difftx::cli::Runner> runners;
  auto add = [&](const char* name, const char* help, auto adder) {
    CLI::App* sub = app.add_subcommand(name, help);
    runners[sub] = adder(*sub);
  };
  add("init", "Create a freshly initialised model directory from a config.json",
      difftx::cli::add_init);
  add("inspect", "Run one forward (and backward) pass and write logits, loss and gradients",
      difftx::cli::add_inspect);
  add("bench", "Time training, prefill and decoding on random tokens", difftx::cli::add_bench);
  add("train", "Train a model on text, with checkpoints that survive crashes",
      difftx::cli::add_train);
  add("eval", "Loss, perplexity and bits per byte of a model on held-out text",
      difftx::cli::add_eval);
  add("generate", "Generate text with a KV cache: sampling, streaming, batches of prompts",
      difftx::cli::add_generate);
  add("plot", "Draw the loss curves of training runs into a PNG", difftx::cli::add_plot);
  add("tokenizer", "Train a SentencePiece tokenizer; encode, decode or describe a tokenizer",
      difftx::cli::add_tokenizer);
  add("attention", "Attention maps, statistics, heatmaps and an interactive report for a text",
      difftx::cli::add_attention);
  add("experiment", "Run the paper's claims as experiments: arms x rates x seeds, with a report",
      difftx::cli::add_experiment);
  add("convert", "Rewrite a model for Hugging Face transformers, llama.cpp (GGUF) or difftx", difftx::cli::add_convert);
  add("classify", "Text classification: train a head on a model, evaluate, predict",
      difftx::cli::add_classify);
  add("summarize", "Summarization: train a model to summarize, evaluate ROUGE, summarize",
      difftx::cli::add_summarize);
  add("evaluate", "Task metric, attention quality and efficiency of a model, beside a second one",
      difftx::cli::add_evaluate);
  add("serve", "OpenAI-style HTTP server: completions, streaming, continuous batching", difftx::cli::add_serve);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + " (run with --help for usage)");
  }
  difftx::install_cleanup_on_signals();
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) {
        const int status = run();
        difftx::cli::release_warnings();
        return finish_stdout(status);
      }
    return fail("no command given (run with --help for usage)");
  } catch (const difftx::Error& e) {
    return fail(difftx::cli::user_message(e));
  } catch (const std::bad_alloc&) {
    return fail("out of memory; try smaller sizes");
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
}
