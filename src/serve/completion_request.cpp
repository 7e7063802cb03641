#include "serve/completion_request.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace difftx::serve {
namespace {

using nlohmann::json;

double number_in(const json& j, const char* key, double lo, double hi) {
  check(j[key].is_number(), key, " must be a number");
  const double v = j[key].get<double>();
  check(std::isfinite(v) && v >= lo && v <= hi, key, " must be in [", lo, ", ", hi, "]");
  return v;
}

int64_t integer_in(const json& j, const char* key, int64_t lo, int64_t hi) {
  const json& v = j[key];
  check(v.is_number_integer(), key, " must be an integer");
  // An unsigned value above INT64_MAX is out of range, not a negative number.
  check(!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(hi), key,
        " must be in [", lo, ", ", hi, "]");
  const int64_t n = v.get<int64_t>();
  check(n >= lo && n <= hi, key, " must be in [", lo, ", ", hi, "]");
  return n;
}

// A string or a list of strings (non-empty list, each string non-empty).
std::vector<std::string> strings(const json& v, const char* key) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else {
    check(v.is_array() && !v.empty(), key, " must be a string or a non-empty list of strings");
    for (const auto& s : v) {
      check(s.is_string(), key, " must be a string or a list of strings");
      out.push_back(s.get<std::string>());
    }
  }
  for (const auto& s : out) check(!s.empty(), key, " must not be an empty string");
  return out;
}

bool present(const json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

}  // namespace

CompletionRequest parse_completion_request(const std::string& body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded(), "the request body is not valid JSON");
  check(j.is_object(), "the request body must be a JSON object");
  CompletionRequest r;
  r.gen.sampling.temperature = 1.0;  // OpenAI's defaults
  r.gen.max_tokens = 16;
  check(present(j, "prompt"), "prompt is required");
  r.prompts = strings(j["prompt"], "prompt");
  check(r.prompts.size() <= 64, "prompt: at most 64 prompts per request");
  if (present(j, "max_tokens")) {
    r.gen.max_tokens = integer_in(j, "max_tokens", 0, int64_t{1} << 40);
    r.max_tokens_given = true;
  }
  if (present(j, "temperature")) r.gen.sampling.temperature = number_in(j, "temperature", 0, 100);
  if (present(j, "top_p")) {
    r.gen.sampling.top_p = number_in(j, "top_p", 0, 1);
    check(r.gen.sampling.top_p > 0, "top_p must be in (0, 1]");
  }
  if (present(j, "stop")) {
    r.gen.stops = strings(j["stop"], "stop");
    check(r.gen.stops.size() <= 16, "stop: at most 16 stop strings");
  }
  if (present(j, "seed"))
    r.gen.seed = static_cast<uint64_t>(integer_in(j, "seed", 0, INT64_MAX));
  if (present(j, "stream")) {
    check(j["stream"].is_boolean(), "stream must be true or false");
    r.stream = j["stream"].get<bool>();
  }
  if (present(j, "n")) check(integer_in(j, "n", 1, 1) == 1, "n must be 1");
  return r;
}

}  // namespace difftx::serve
