#pragma once
// A 64-byte-aligned, zero-initialised float array: the single allocation that holds all the
// parameters of a model (or all their gradients), with tensors as offsets into it.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace difftx {

class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(size_t n) : n_(n) {
    const size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    void* p = bytes ? std::aligned_alloc(64, bytes) : nullptr;
    if (bytes && !p) throw std::bad_alloc();
    if (p) std::memset(p, 0, bytes);
    data_.reset(static_cast<float*>(p));
  }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return n_; }
  void zero() {
    if (n_) std::memset(data_.get(), 0, n_ * sizeof(float));
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t n_ = 0;
};

}  // namespace difftx
