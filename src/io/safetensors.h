#pragma once
// The safetensors format: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data.
// Reading validates everything (offsets, sizes, dtypes) before any tensor is used; F32, F16
// and BF16 are read and written.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace difftx {

enum class DType { kF32, kF16, kBF16 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);

struct StTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte offsets into the data section
  size_t numel() const;
};

class SafetensorsFile {
 public:
  // Parses and validates; `where` names the source in error messages. Throws Error.
  static SafetensorsFile parse(std::vector<uint8_t> bytes, const std::string& where);
  static SafetensorsFile read(const std::string& path);  // the whole file in memory
  // Reads and validates only the header; each to_float reads that tensor's bytes from the
  // file (pread), so loading a model never holds the whole file in memory. A file that
  // shrinks meanwhile is an Error.
  static SafetensorsFile open(const std::string& path);

  const std::vector<StTensor>& tensors() const { return tensors_; }
  const StTensor* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Converts to float32 into out (numel floats).
  void to_float(const StTensor& t, float* out) const;
  std::vector<float> to_float(const StTensor& t) const;

 private:
  // Validates the JSON header (bytes [8, 8 + n) of a file of file_size bytes).
  void parse_header(const uint8_t* json_begin, size_t n, size_t file_size);
  std::vector<uint8_t> bytes_;   // parse(), read(): the whole file
  std::shared_ptr<int> fd_;      // open(): the file, closed with the last copy
  size_t data_start_ = 0;
  std::vector<StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::string where_;
};

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;
  DType dtype = DType::kF32;  // stored as: F32, or rounded to nearest even BF16 / F16
};

// The file as bytes (tensors in the given order, each in its dtype) and an atomic write of it.
// A finite value beyond F16's range is an Error naming the tensor (not a silent infinity).
std::vector<uint8_t> serialize_safetensors(const std::vector<TensorToWrite>& tensors,
                                           const std::map<std::string, std::string>& metadata);
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

float bf16_to_float(uint16_t bits);
float f16_to_float(uint16_t bits);
uint16_t float_to_bf16(float f);  // round to nearest even; NaN stays NaN
uint16_t float_to_f16(float f);   // round to nearest even; overflow gives infinity

}  // namespace difftx
