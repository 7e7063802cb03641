#include <cstring>

#include "bindings.h"

namespace difftx::python {

std::vector<int32_t> token_ids(const py::handle& ids, int32_t vocab) {
  std::vector<int64_t> values;
  if (py::isinstance<py::array>(ids)) {
    const auto array = py::reinterpret_borrow<py::array>(ids);
    const char kind = array.dtype().kind();
    if (kind != 'i' && kind != 'u')
      throw py::value_error("token ids must be integers, got a numpy array of dtype " +
                            py::str(array.dtype()).cast<std::string>());
    if (array.ndim() != 1)
      throw py::value_error("token ids must be a 1-D array, got " + std::to_string(array.ndim()) +
                            " dimensions");
    const auto as64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(array);
    values.assign(as64.data(), as64.data() + as64.size());
  } else if (py::isinstance<py::sequence>(ids) && !py::isinstance<py::str>(ids) &&
             !py::isinstance<py::bytes>(ids)) {
    for (const py::handle item : py::reinterpret_borrow<py::sequence>(ids)) {
      if (!py::isinstance<py::int_>(item) || py::isinstance<py::bool_>(item))
        throw py::value_error("token ids must be integers, got " +
                              py::str(py::type::of(item).attr("__name__")).cast<std::string>());
      values.push_back(item.cast<int64_t>());
    }
  } else {
    throw py::value_error("token ids must be a list or 1-D integer numpy array");
  }
  if (values.empty()) throw py::value_error("token ids must not be empty");
  std::vector<int32_t> out;
  out.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0 || values[i] >= vocab)
      throw py::value_error("token id " + std::to_string(values[i]) + " at position " +
                            std::to_string(i) + " is out of range [0, " + std::to_string(vocab) +
                            ")");
    out.push_back(static_cast<int32_t>(values[i]));
  }
  return out;
}

py::array_t<float> to_numpy(const float* data, const std::vector<int64_t>& shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<float> out(dims);
  if (out.size() > 0) std::memcpy(out.mutable_data(), data, sizeof(float) * out.size());
  return out;
}

py::object json_to_python(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

}  // namespace difftx::python

#include "kernels/matmul.h"

namespace difftx::python {

Precision precision_named(const std::string& name) {
  if (name == "fp32") return Precision::kFP32;
  if (name == "bf16") return Precision::kBF16;
  throw py::value_error("precision must be \"fp32\" or \"bf16\", got \"" + name + "\"");
}

}  // namespace difftx::python
