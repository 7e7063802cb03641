// The Python module `difftx` (docs/python.md): the library's models, generation, attention
// analysis and training loop behind a small Python API, with numpy arrays in and out.
#include "bindings.h"
#include "core/error.h"

PYBIND11_MODULE(difftx, m) {
  m.doc() = "difftx: the Differential Transformer engine from Python (docs/python.md)";
  // The library's bad-input errors, with its message; a RuntimeError for callers that only
  // know that.
  pybind11::register_exception<difftx::Error>(m, "Error", PyExc_RuntimeError);
  difftx::python::bind_model(m);
  difftx::python::bind_train(m);
}
