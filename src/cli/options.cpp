#include "cli/options.h"

#include <omp.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "train/dataset.h"

namespace difftx::cli {
namespace {
constexpr int64_t kMaxSeq = int64_t{1} << 20;

std::string range_text(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}
std::string shown(const std::string& s) { return s.size() <= 40 ? s : s.substr(0, 37) + "..."; }

// Whole-string decimal integer parse into sign and magnitude; false for anything else
// (spaces, "+", a minus where none is allowed, a magnitude beyond 2^64 - 1).
bool parse_integer(const std::string& s, bool allow_minus, bool& negative, uint64_t& magnitude) {
  negative = !s.empty() && s[0] == '-';
  if (negative && !allow_minus) return false;
  const size_t first = negative ? 1 : 0;
  if (first >= s.size()) return false;
  magnitude = 0;
  for (size_t i = first; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (magnitude > (UINT64_MAX - digit) / 10) return false;
    magnitude = magnitude * 10 + digit;
  }
  return true;
}

// Whether sign and magnitude lie in [lo, hi].
bool within(bool negative, uint64_t magnitude, int64_t lo, int64_t hi) {
  if (negative) {
    if (magnitude > uint64_t{1} << 63) return false;
    const int64_t v = magnitude == uint64_t{1} << 63 ? INT64_MIN : -static_cast<int64_t>(magnitude);
    return v >= lo && v <= hi;
  }
  return hi >= 0 && magnitude <= static_cast<uint64_t>(hi) && (lo <= 0 || magnitude >= static_cast<uint64_t>(lo));
}
}  // namespace

namespace {
std::vector<std::string> g_held;
bool g_holding = false;
void holding_sink(const std::string& message) {
  if (g_holding) g_held.push_back(message);
  else std::fprintf(stderr, "difftx: warning: %s\n", message.c_str());
}
}  // namespace

void hold_warnings() {
  g_holding = true;
  set_warning_sink(holding_sink);
}

void release_warnings() {
  g_holding = false;
  for (const auto& m : g_held) std::fprintf(stderr, "difftx: warning: %s\n", m.c_str());
  g_held.clear();
}

std::string held_warnings() {
  std::string s;
  for (const auto& m : g_held) s += (s.empty() ? " (after warnings: " : "; ") + m;
  g_held.clear();
  return s.empty() ? s : s + ")";
}

std::string flag_for_field(const std::string& field) {
  std::string flag = "--" + field;
  for (char& c : flag)
    if (c == '_') c = '-';
  return flag;
}

std::string user_message(const Error& e) {
  const std::string what = e.what();
  const std::string& field = e.field();
  if (field.empty() || what.compare(0, field.size(), field) != 0) return what;
  return flag_for_field(field) + what.substr(field.size());
}

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        bool negative = false;
        uint64_t magnitude = 0;
        if (parse_integer(s, true, negative, magnitude) && within(negative, magnitude, lo, hi)) return {};
        return "must be an integer in " + range_text(lo, hi) + ", got " + shown(s);
      },
      "in " + range_text(lo, hi));
}

CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        bool negative = false;
        uint64_t magnitude = 0;
        if (parse_integer(s, false, negative, magnitude)) return {};
        return "must be an integer in [0, 18446744073709551615], got " + shown(s);
      },
      "UINT64");
}

CLI::Validator real_in(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
        if (end && *end == '\0' && errno == 0 && std::isfinite(v) && v >= lo && v <= hi) return {};
        return "must be a number in [" + CLI::detail::to_string(lo) + ", " +
               CLI::detail::to_string(hi) + "], got " + shown(s);
      },
      "NUMBER");
}

CLI::Option* add_model_dir(CLI::App& app, std::string& dir, const std::string& help) {
  return app.add_option("--model", dir, help)->required();
}

std::string TokenSource::token_cache_dir() const {
  return cache_dir.empty() ? default_cache_dir() : cache_dir;
}

CLI::Option* add_token_source(CLI::App& app, TokenSource& src, const std::string& data_help) {
  app.add_option("--cache-dir", src.cache_dir, "token cache folder (default ~/.cache/difftx)");
  return app.add_option("--data", src.data, data_help);
}

CLI::Option* add_tokenizer_spec(CLI::App& app, std::string& spec) {
  return app.add_option("--tokenizer", spec, "byte, gpt2, gpt2:DIR, spm:FILE.model or a tokenizer.json")
      ->capture_default_str();
}

CLI::Option* add_precision(CLI::App& app, Precision& precision) {
  return app
      .add_option_function<std::string>(
          "--precision",
          [&precision](const std::string& name) {
            precision = name == "bf16" ? Precision::kBF16 : Precision::kFP32;
          },
          "matrix products: fp32 or bf16 (f32 accumulate)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->default_str("fp32");
}

CLI::Option* add_threads(CLI::App& app, int& threads) {
  return app.add_option("--threads", threads, "OpenMP threads (default: all cores)")
      ->check(integer_in(1, 1024));
}

void apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

CLI::Option* add_batch(CLI::App& app, int64_t& batch, const std::string& help) {
  return app.add_option("--batch", batch, help)->check(integer_in(1, 4096))->capture_default_str();
}

CLI::Option* add_seq(CLI::App& app, int64_t& seq, const std::string& help) {
  return app.add_option("--seq", seq, help)->check(integer_in(1, kMaxSeq));
}

CLI::Option* add_seed(CLI::App& app, uint64_t& seed, const std::string& help) {
  return app.add_option("--seed", seed, help)->check(unsigned_64())->capture_default_str();
}

}  // namespace difftx::cli
