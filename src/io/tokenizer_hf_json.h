#pragma once
// Reading tokenizer.json fields with errors that name the JSON path ("pre_tokenizer.
// pretokenizers[1].pattern"), so a bad or unsupported file is reported where it is wrong,
// never as a JSON library exception.
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace difftx::hf {

using Json = nlohmann::json;

// obj[key], or nullptr when obj is not an object, the key is absent or its value is null.
inline const Json* field(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

inline std::string child(const std::string& path, const char* key) {
  return path.empty() ? std::string(key) : path + "." + key;
}
inline std::string element(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

inline std::string get_string(const Json& obj, const char* key, const std::string& path,
                              const char* fallback = nullptr) {
  const Json* v = field(obj, key);
  if (!v) {
    check(fallback != nullptr, child(path, key), " is missing (a string is needed)");
    return fallback;
  }
  check(v->is_string(), child(path, key), " must be a string");
  return v->get<std::string>();
}

inline bool get_bool(const Json& obj, const char* key, const std::string& path, bool fallback) {
  const Json* v = field(obj, key);
  if (!v) return fallback;
  check(v->is_boolean(), child(path, key), " must be true or false");
  return v->get<bool>();
}

inline int64_t get_int(const Json& obj, const char* key, const std::string& path, int64_t fallback,
                       int64_t lo, int64_t hi) {
  const Json* v = field(obj, key);
  if (!v) return fallback;
  check(v->is_number_integer(), child(path, key), " must be an integer");
  const int64_t x = v->get<int64_t>();
  check(x >= lo && x <= hi, child(path, key), " = ", x, " is out of range [", lo, ", ", hi, "]");
  return x;
}

// The "type" of a component object at path.
inline std::string type_of(const Json& obj, const std::string& path) {
  check(obj.is_object(), path, " must be an object with a \"type\"");
  return get_string(obj, "type", path);
}

[[noreturn]] inline void unsupported(const std::string& path, const std::string& type,
                                     const char* supported) {
  throw Error(path + ".type \"" + type + "\" is not supported by difftx (supported: " + supported +
              ")");
}

}  // namespace difftx::hf
