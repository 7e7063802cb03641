#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/files.h"
#include "infer/generate.h"
#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "io/tokens.h"

namespace difftx::cli {

Runner add_generate(CLI::App& app) {
  struct Opts {
    std::string model, prompt, prompt_file, tokens;
    GenerateOptions g;
    bool ids = false;
  };
  auto o = std::make_shared<Opts>();
  add_model_dir(app, o->model, "model directory");
  auto* p1 = app.add_option("--prompt", o->prompt, "prompt text");
  auto* p2 = app.add_option("--prompt-file", o->prompt_file,
                            "file with one prompt per line (- reads stdin): all run as one batch, one JSON line each");
  auto* p3 = app.add_option("--tokens", o->tokens, "prompt as comma-separated token ids");
  p1->excludes(p2, p3);
  p2->excludes(p3);
  app.add_option("--max-tokens", o->g.max_tokens, "new tokens to generate")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
  app.add_option("--temperature", o->g.sampling.temperature, "0 = greedy")
      ->check(real_in(0, 1e6))->capture_default_str();
  app.add_option("--top-k", o->g.sampling.top_k, "keep the k most likely tokens (0: off)")
      ->check(integer_in(0, int64_t{1} << 31))->capture_default_str();
  app.add_option("--top-p", o->g.sampling.top_p, "nucleus sampling, in (0, 1]")
      ->check(real_in(0, 1))->capture_default_str();
  app.add_option("--repetition-penalty", o->g.sampling.repetition_penalty, "> 1 discourages repeats")
      ->check(real_in(0, 1e6))->capture_default_str();
  add_seed(app, o->g.seed, "sampling seed");
  app.add_option("--stop", o->g.stops, "stop when this text appears (repeatable)");
  app.add_flag("--ids", o->ids, "print generated ids, comma-separated, instead of text");
  app.add_flag("--sliding-window", o->g.sliding_window,
               "continue past the context by keeping its last half");
  add_precision(app, o->g.run.precision);
  return [o, &app]() {
    const auto model = load_model(o->model);
    std::unique_ptr<Tokenizer> tok;
    if (has_tokenizer(o->model)) tok = load_tokenizer(o->model);
    // A Hugging Face generation_config.json gives the defaults; flags given win.
    const std::string gen_config = o->model + "/generation_config.json";
    std::error_code ec;
    if (std::filesystem::is_regular_file(gen_config, ec)) {
      const GenerationConfig g = read_generation_config(gen_config);
      const SamplingOptions from_file = sampling_from(g);
      SamplingOptions& s = o->g.sampling;
      if (!app.count("--temperature")) s.temperature = from_file.temperature;
      if (!app.count("--top-k")) s.top_k = from_file.top_k;
      if (!app.count("--top-p")) s.top_p = from_file.top_p;
      if (!app.count("--repetition-penalty")) s.repetition_penalty = from_file.repetition_penalty;
      o->g.eos_ids = g.eos_ids;
    }
    check(!o->prompt.empty() || !o->prompt_file.empty() || !o->tokens.empty(),
          "give --prompt TEXT, --prompt-file FILE or --tokens IDS (a non-empty prompt)");
    auto need_tokenizer = [&] {
      check(tok != nullptr, o->model + " has no tokenizer; use --tokens IDS (and --ids)");
    };
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::string> texts;
    if (!o->tokens.empty()) {
      prompts.push_back(parse_token_list(o->tokens, model->config.vocab_size));
    } else if (!o->prompt.empty()) {
      need_tokenizer();
      prompts.push_back(tok->encode_with_special(o->prompt));
    } else {
      need_tokenizer();
      std::istringstream in(read_input_text(o->prompt_file));
      for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        texts.push_back(line);
        prompts.push_back(tok->encode_with_special(line));
      }
      check(!prompts.empty(), o->prompt_file + " holds no prompt (one per line)");
    }
    const bool batch = !o->prompt_file.empty();
    const bool as_ids = o->ids || !tok;
    bool first_id = true;
    TokenCallback stream;
    if (!batch)  // one prompt: stream to stdout as tokens arrive
      stream = [&](int64_t, const std::string& text, int32_t id) {
        if (as_ids) {
          write_stdout((first_id ? "" : ",") + std::to_string(id));
          first_id = false;
        } else {
          write_stdout(text);
        }
      };
    const auto results = generate(*model, tok.get(), prompts, o->g, stream);
    if (!batch) {
      std::printf("\n");
      return 0;
    }
    for (size_t i = 0; i < results.size(); ++i) {
      nlohmann::json j{{"index", i}, {"prompt", texts[i]}, {"finish_reason", results[i].finish_reason},
                       {"tokens", results[i].ids.size()}};
      if (as_ids) j["ids"] = results[i].ids;
      else j["text"] = results[i].text;
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    return 0;
  };
}

}  // namespace difftx::cli
