#pragma once
// The options layer: flags that several commands share, declared once and mapped to library
// fields, range checks for numeric flags (a value out of range is an error naming the flag,
// never a clamp), and the mapping back from a library error's field to the flag the user typed.
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "kernels/matmul.h"

namespace difftx::cli {

// "min_lr_ratio" -> "--min-lr-ratio".
std::string flag_for_field(const std::string& field);
// The message of `e` as the user should see it: a leading field name becomes its flag.
std::string user_message(const Error& e);

// Warnings (difftx::warn) are held while a command sets up, so that a warning followed by an
// error still makes one stderr line (the error line then mentions them). release_warnings()
// prints what is held and lets later ones through at once; main calls it when a command ends.
void hold_warnings();
void release_warnings();
std::string held_warnings();  // "" or " (after warnings: ...)", and forgets them

// Numeric flags: the value must parse whole and lie in [lo, hi] (CLI11 then reports
// "--flag: must be an integer in [lo, hi], got X").
CLI::Validator integer_in(int64_t lo, int64_t hi);
CLI::Validator unsigned_64();  // any integer in [0, 2^64 - 1]
CLI::Validator real_in(double lo, double hi);  // a finite number in [lo, hi]

// Shared option groups. Each binds the flag to the library field it feeds.
CLI::Option* add_model_dir(CLI::App& app, std::string& dir, const std::string& help);
// --data (the text) and --cache-dir (token caches; token_cache_dir gives the default).
struct TokenSource {
  std::string data, cache_dir;
  std::string token_cache_dir() const;
};
CLI::Option* add_token_source(CLI::App& app, TokenSource& src, const std::string& data_help);
CLI::Option* add_tokenizer_spec(CLI::App& app, std::string& spec);
CLI::Option* add_precision(CLI::App& app, Precision& precision);
// --threads N (default: all cores); apply_threads sets OpenMP's pool when given.
CLI::Option* add_threads(CLI::App& app, int& threads);
void apply_threads(int threads);
CLI::Option* add_batch(CLI::App& app, int64_t& batch, const std::string& help);
CLI::Option* add_seq(CLI::App& app, int64_t& seq, const std::string& help);
CLI::Option* add_seed(CLI::App& app, uint64_t& seed, const std::string& help);

}  // namespace difftx::cli
