// difftx tokenizer train|encode|decode|info: train a SentencePiece model, and look at what a
// tokenizer does to a text.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/files.h"
#include "io/tokenizer.h"
#include "io/tokens.h"

namespace difftx::cli {
namespace {

// --tokenizer SPEC or --model DIR (exactly one).
struct TokenizerChoice {
  std::string spec, model;
  void add_to(CLI::App& app) {
    app.add_option("--tokenizer", spec,
                   "byte, gpt2, gpt2:DIR, spm:FILE.model, a Hugging Face tokenizer.json or a "
                   "directory holding one");
    app.add_option("--model", model, "a model directory (its saved tokenizer)");
  }
  std::unique_ptr<Tokenizer> load() const {
    check(spec.empty() != model.empty(), "give exactly one of --tokenizer SPEC or --model DIR");
    return spec.empty() ? load_tokenizer(model) : make_tokenizer(spec);
  }
};

}  // namespace

Runner add_tokenizer(CLI::App& app) {
  app.require_subcommand(1);
  struct Opts {
    SentencePieceTrainOptions train;
    TokenizerChoice enc_tok, dec_tok, info_tok;
    std::string text, file, ids;
    bool no_special = false;
  };
  auto o = std::make_shared<Opts>();

  CLI::App* train = app.add_subcommand(
      "train", "Train a SentencePiece tokenizer (byte fallback, exact round trips) on text");
  train->add_option("--data", o->train.inputs, "text files or folders (every *.txt inside)")
      ->required();
  train->add_option("--vocab-size", o->train.vocab_size,
                    "vocabulary size, including 256 byte tokens and <unk> <s> </s>")
      ->check(integer_in(260, 1 << 20))->required();
  train->add_option("--out", o->train.out_dir,
                    "new directory for tokenizer.model and difftx_tokenizer.json (must not exist or be "
                    "empty)")
      ->required();
  train->add_option("--model-type", o->train.model_type, "unigram or bpe")
      ->check(CLI::IsMember({"unigram", "bpe"}))
      ->capture_default_str();
  train->add_option("--character-coverage", o->train.character_coverage,
                    "share of characters given their own pieces; rarer ones use byte fallback")
      ->check(real_in(0, 1))->capture_default_str();
  train->add_option("--threads", o->train.num_threads, "trainer threads (0: all cores)")
      ->check(integer_in(0, 1024))->capture_default_str();
  train->add_flag("--verbose", o->train.verbose, "show sentencepiece's training log");

  CLI::App* encode = app.add_subcommand("encode", "Print the token ids of a text");
  o->enc_tok.add_to(*encode);
  encode->add_option("--text", o->text, "the text to encode");
  encode->add_option("--file", o->file, "a file to encode (its bytes, as they are; - reads stdin)");
  encode->add_flag("--no-special", o->no_special,
                   "leave out the special tokens the tokenizer adds around a text (e.g. BOS)");

  CLI::App* decode = app.add_subcommand("decode", "Write the text (bytes) of token ids to stdout");
  o->dec_tok.add_to(*decode);
  decode->add_option("--ids", o->ids, "comma-separated token ids, e.g. 15496,995")->required();

  CLI::App* info = app.add_subcommand("info", "Print a tokenizer's type, size and fingerprint");
  o->info_tok.add_to(*info);

  return [o, train, encode, decode, info]() {
    if (train->parsed()) {
      train_sentencepiece(o->train);
      const auto tok = load_tokenizer(o->train.out_dir);
      std::printf("wrote %s: sentencepiece %s, %d tokens\n", o->train.out_dir.c_str(),
                  o->train.model_type.c_str(), static_cast<int>(tok->vocab_size()));
      return 0;
    }
    if (encode->parsed()) {
      check(encode->count("--text") + encode->count("--file") == 1,
            "give exactly one of --text or --file");
      const auto tok = o->enc_tok.load();
      const std::string input = o->file.empty() ? o->text : read_input_text(o->file);
      const auto ids = o->no_special ? tok->encode(input) : tok->encode_with_special(input);
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
      std::printf("%s\n", line.c_str());
      return 0;
    }
    if (decode->parsed()) {
      const auto tok = o->dec_tok.load();
      write_stdout(tok->decode(parse_token_list(o->ids, tok->vocab_size())));
      return 0;
    }
    const auto tok = o->info_tok.load();
    std::printf("%s\n", nlohmann::json{{"type", tok->kind()},
                                       {"vocab_size", tok->vocab_size()},
                                       {"eos_id", tok->eos_id()},
                                       {"fingerprint", tok->fingerprint()}}
                            .dump()
                            .c_str());
    (void)info;
    return 0;
  };
}

}  // namespace difftx::cli
