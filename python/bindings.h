#pragma once
// Shared pieces of the Python module: the loaded model every binding works on, argument
// conversion (bad arguments raise ValueError) and copies into numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "model/params.h"

namespace difftx::python {

namespace py = pybind11;

// A model directory as `difftx generate --model` loads it: weights and, when the directory has
// one, its tokenizer. Shared so that a stream or a tokenizer object outlives the Model object.
struct LoadedModel {
  std::string dir;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null without one
};
using ModelRef = std::shared_ptr<const LoadedModel>;

// A 1-D sequence of token ids (list, tuple or integer numpy array), each in [0, vocab).
// Raises ValueError for another dtype, an empty sequence or an id out of range.
std::vector<int32_t> token_ids(const py::handle& ids, int32_t vocab);

// A copy of `data` as a float32 numpy array of the given shape.
py::array_t<float> to_numpy(const float* data, const std::vector<int64_t>& shape);

// A JSON text as Python objects (json.loads).
py::object json_to_python(const std::string& text);

void bind_model(py::module_& m);
void bind_generate(py::class_<LoadedModel, std::shared_ptr<LoadedModel>>& model_class);
void bind_train(py::module_& m);

}  // namespace difftx::python

namespace difftx {
enum class Precision;
}
namespace difftx::python {
// "fp32" or "bf16" (the CLI's --precision); ValueError otherwise.
Precision precision_named(const std::string& name);
}  // namespace difftx::python
