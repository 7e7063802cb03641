#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/uint128.h"

namespace difftx {
using json = nlohmann::json;

size_t dtype_size(DType t) { return t == DType::kF32 ? 4 : 2; }
const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
  }
  return "?";
}

size_t StTensor::numel() const {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

float bf16_to_float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    u = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

uint16_t float_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504: inf
  if (a >= 0x38800000u) {  // normal half: rebias the exponent, round the 13 dropped bits
    const uint32_t m = a - 0x38000000u;
    return static_cast<uint16_t>(sign | ((m + 0xfffu + ((m >> 13) & 1u)) >> 13));
  }
  if (a < 0x33000000u) return sign;  // below half the smallest subnormal: zero
  // Subnormal half: shift the (implicit-one) mantissa into place with round to nearest even.
  const uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - e;  // 14..24
  const uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
  return static_cast<uint16_t>(sign | (q + (rem > half || (rem == half && (q & 1u)) ? 1 : 0)));
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  return parse(read_file_bytes(path), path);
}

namespace {
// The header length from the first 8 bytes, checked against the file size.
uint64_t header_length(const uint8_t* first8, size_t size, const std::string& where) {
  if (size < 8)
    throw Error(where + ": truncated safetensors file (" + std::to_string(size) +
                " bytes, shorter than the 8-byte header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | first8[static_cast<size_t>(i)];
  if (n == 0) throw Error(where + ": safetensors header is empty");
  if (n > size - 8)
    throw Error(where + ": safetensors header length " + std::to_string(n) +
                " is longer than the file (" + std::to_string(size) + " bytes); truncated file?");
  return n;
}

// pread of exactly n bytes at offset, or an Error.
void read_at(int fd, uint8_t* out, size_t n, uint64_t offset, const std::string& where) {
  while (n > 0) {
    const ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error("cannot read " + where + ": " + std::strerror(errno));
    if (got == 0) throw Error(where + ": file ended early (changed while being read?)");
    out += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}
}  // namespace

SafetensorsFile SafetensorsFile::parse(std::vector<uint8_t> bytes, const std::string& where) {
  SafetensorsFile f;
  f.where_ = where;
  const uint64_t n = header_length(bytes.data(), bytes.size(), where);
  f.parse_header(bytes.data() + 8, static_cast<size_t>(n), bytes.size());
  f.bytes_ = std::move(bytes);
  return f;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then tells what it is.
  const int raw = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) throw Error("file not found: " + path);
    throw Error("cannot open " + path + ": " + std::strerror(errno));
  }
  SafetensorsFile f;
  f.where_ = path;
  f.fd_ = std::shared_ptr<int>(new int(raw), [](int* p) {
    ::close(*p);
    delete p;
  });
  struct stat st {};
  if (::fstat(raw, &st) != 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path + " is not a regular file");
  const size_t size = static_cast<size_t>(st.st_size);
  uint8_t first8[8] = {};
  if (size >= 8) read_at(raw, first8, 8, 0, path);
  const uint64_t n = header_length(first8, size, path);
  std::vector<uint8_t> header(static_cast<size_t>(n));
  read_at(raw, header.data(), header.size(), 8, path);
  f.parse_header(header.data(), header.size(), size);
  return f;
}

void SafetensorsFile::parse_header(const uint8_t* json_begin, size_t n, size_t size) {
  const std::string& where = where_;
  SafetensorsFile& f = *this;
  json h;
  try {
    h = json::parse(json_begin, json_begin + n);
  } catch (const json::exception& e) {
    throw Error(where + ": safetensors header is not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!h.is_object()) throw Error(where + ": safetensors header is not a JSON object");
  f.data_start_ = 8 + n;
  const size_t data_size = size - f.data_start_;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(where + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m)
        f.metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
      continue;
    }
    const std::string at = where + ": tensor \"" + name + "\"";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      throw Error(at + " needs dtype, shape and data_offsets");
    StTensor t;
    t.name = name;
    if (!v["dtype"].is_string()) throw Error(at + ": dtype is not a string");
    const std::string dt = v["dtype"].get<std::string>();
    if (dt == "F32") t.dtype = DType::kF32;
    else if (dt == "F16") t.dtype = DType::kF16;
    else if (dt == "BF16") t.dtype = DType::kBF16;
    else throw Error(at + " has unsupported dtype \"" + dt + "\" (F32, F16 and BF16 are read)");
    if (!v["shape"].is_array()) throw Error(at + ": shape is not an array");
    uint128 numel = 1;
    for (const json& s : v["shape"]) {
      if (!s.is_number_unsigned()) throw Error(at + ": shape entries must be integers >= 0");
      const uint64_t dim = s.get<uint64_t>();
      numel *= dim;
      if (numel > std::numeric_limits<uint64_t>::max() / 8)
        throw Error(at + ": shape is impossibly large");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      throw Error(at + ": data_offsets must be two integers >= 0");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size)
      throw Error(at + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                  "] lie outside the data section (" + std::to_string(data_size) +
                  " bytes); truncated file?");
    if (static_cast<uint128>(e - b) != numel * dtype_size(t.dtype))
      throw Error(at + ": data_offsets span " + std::to_string(e - b) +
                  " bytes but shape x dtype needs " +
                  std::to_string(static_cast<uint64_t>(numel * dtype_size(t.dtype))));
    t.begin = static_cast<size_t>(b);
    t.end = static_cast<size_t>(e);
    f.tensors_.push_back(std::move(t));
  }
}

const StTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void SafetensorsFile::to_float(const StTensor& t, float* out) const {
  const size_t n = t.numel();
  std::vector<uint8_t> chunk;  // open(): this tensor's bytes, read now
  const uint8_t* p = nullptr;
  if (!fd_) {
    p = bytes_.data() + data_start_ + t.begin;
  } else {
    if (t.dtype == DType::kF32) {
      read_at(*fd_, reinterpret_cast<uint8_t*>(out), 4 * n, data_start_ + t.begin, where_);
      return;
    }
    chunk.resize(t.end - t.begin);
    read_at(*fd_, chunk.data(), chunk.size(), data_start_ + t.begin, where_);
    p = chunk.data();
  }
  switch (t.dtype) {
    case DType::kF32:
      if (n) std::memcpy(out, p, n * 4);
      break;
    case DType::kF16:
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t bits = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
        out[i] = t.dtype == DType::kF16 ? f16_to_float(bits) : bf16_to_float(bits);
      }
      break;
  }
}

std::vector<float> SafetensorsFile::to_float(const StTensor& t) const {
  std::vector<float> v(t.numel());
  to_float(t, v.data());
  return v;
}

std::vector<uint8_t> serialize_safetensors(const std::vector<TensorToWrite>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  auto numel_of = [](const TensorToWrite& t) {
    size_t n = 1;
    for (int64_t s : t.shape) n *= static_cast<size_t>(s);
    return n;
  };
  size_t offset = 0;
  for (const auto& t : tensors) {
    const size_t bytes = dtype_size(t.dtype) * numel_of(t);
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::vector<uint8_t> out(8 + header.size() + offset);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  uint8_t* p = out.data() + 8 + header.size();
  for (const auto& t : tensors) {
    const size_t numel = numel_of(t);
    if (t.dtype == DType::kF32) {
      if (numel) std::memcpy(p, t.data, 4 * numel);  // little-endian host (x86-64)
    } else {
      for (size_t i = 0; i < numel; ++i) {
        const float x = t.data[i];
        const uint16_t b = t.dtype == DType::kBF16 ? float_to_bf16(x) : float_to_f16(x);
        if (t.dtype == DType::kF16 && std::isfinite(x) && (b & 0x7c00u) == 0x7c00u)
          throw Error("tensor \"" + t.name + "\" holds " + std::to_string(x) +
                      ", beyond F16's range (65504); write it as BF16 or F32");
        p[2 * i] = static_cast<uint8_t>(b);
        p[2 * i + 1] = static_cast<uint8_t>(b >> 8);
      }
    }
    p += dtype_size(t.dtype) * numel;
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const auto bytes = serialize_safetensors(tensors, metadata);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace difftx
