// difftx.Model: loading, logits, loss and gradients, attention maps and statistics, and the
// tokenizer. Compute runs with the GIL released.
#include <pybind11/stl.h>

#include "analysis/attention_maps.h"
#include "analysis/attention_stats.h"
#include "bindings.h"
#include "core/buffer.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/transformer.h"

namespace difftx::python {
namespace {

std::shared_ptr<LoadedModel> load(const std::string& dir) {
  auto loaded = std::make_shared<LoadedModel>();
  loaded->dir = dir;
  py::gil_scoped_release release;
  loaded->model = load_model(dir);
  if (has_tokenizer(dir)) loaded->tokenizer = load_tokenizer(dir);
  return loaded;
}

int32_t vocab_of(const LoadedModel& m) { return static_cast<int32_t>(m.model->config.vocab_size); }

// The forward pass `difftx inspect` runs: next-token targets, all logits, kept for backward.
struct Pass {
  Activations acts;
  float loss = 0.f;
};
void run_pass(const LoadedModel& m, const std::vector<int32_t>& tokens, Pass& pass) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const std::vector<int32_t> targets = next_token_targets(tokens, 1, T);
  pass.loss = static_cast<float>(forward(*m.model, tokens.data(), targets.data(), 1, T, pass.acts));
}

py::array_t<float> logits(const LoadedModel& m, const py::handle& ids) {
  const auto tokens = token_ids(ids, vocab_of(m));
  Pass pass;
  {
    py::gil_scoped_release release;
    run_pass(m, tokens, pass);
  }
  return to_numpy(pass.acts.logits.data(),
                  {static_cast<int64_t>(tokens.size()), m.model->config.vocab_size});
}

double loss(const LoadedModel& m, const py::handle& ids) {
  const auto tokens = token_ids(ids, vocab_of(m));
  Pass pass;
  py::gil_scoped_release release;
  run_pass(m, tokens, pass);
  return pass.loss;
}

py::tuple loss_and_grads(const LoadedModel& m, const py::handle& ids) {
  const auto tokens = token_ids(ids, vocab_of(m));
  Pass pass;
  AlignedFloats grads(m.model->layout.total);
  {
    py::gil_scoped_release release;
    run_pass(m, tokens, pass);
    backward(*m.model, pass.acts, grads.data());
  }
  py::dict by_name;
  for (const auto& spec : m.model->layout.tensors)
    by_name[py::str(spec.name)] = to_numpy(grads.data() + spec.offset, spec.shape);
  return py::make_tuple(static_cast<double>(pass.loss), by_name);
}

// Maps per layer ({"attn", and for differential models "attn1", "attn2", "lambda", and for
// DIFF V2 "token_lambda"}) and the statistics of stats.json, as `difftx attention` computes them.
py::dict attention(const LoadedModel& m, const py::handle& ids, double threshold) {
  const auto tokens = token_ids(ids, vocab_of(m));
  const int64_t T = static_cast<int64_t>(tokens.size());
  StatisticsOptions options;
  options.maps.threshold = threshold;
  AttentionMaps maps;
  std::string stats_json;
  {
    py::gil_scoped_release release;
    maps = compute_attention_maps(*m.model, tokens);
    stats_json = statistics_to_json(attention_statistics(*m.model, tokens.data(), 1, T, options))
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  py::list layers;
  for (const LayerMaps& layer : maps.layers) {
    py::dict d;
    const std::vector<int64_t> shape{layer.heads, T, T};
    d["attn"] = to_numpy(layer.attn.data(), shape);
    if (maps.diff) {
      d["attn1"] = to_numpy(layer.attn1.data(), shape);
      d["attn2"] = to_numpy(layer.attn2.data(), shape);
      d["lambda"] = static_cast<double>(layer.lambda);
    }
    if (!layer.token_lambda.empty()) d["token_lambda"] = to_numpy(layer.token_lambda.data(), {layer.heads, T});
    layers.append(d);
  }
  py::dict out;
  out["layers"] = layers;
  out["stats"] = json_to_python(stats_json);
  return out;
}

// difftx.Tokenizer: the model directory's tokenizer, kept alive by the model it came from.
struct TokenizerRef {
  ModelRef owner;
  const Tokenizer& get() const { return *owner->tokenizer; }
};

}  // namespace

void bind_model(py::module_& m) {
  py::class_<TokenizerRef>(m, "Tokenizer", "A model directory's tokenizer")
      .def_property_readonly("kind", [](const TokenizerRef& t) { return t.get().kind(); })
      .def_property_readonly("vocab_size", [](const TokenizerRef& t) { return t.get().vocab_size(); })
      .def_property_readonly("eos_id", [](const TokenizerRef& t) { return t.get().eos_id(); })
      .def("encode", [](const TokenizerRef& t, const std::string& text, bool special) {
             return special ? t.get().encode_with_special(text) : t.get().encode(text);
           }, py::arg("text"), py::arg("special") = false,
           "Token ids of text (special=True adds the tokens a prompt gets, e.g. BOS)")
      .def("decode", [](const TokenizerRef& t, const py::handle& ids) {
             return py::bytes(t.get().decode(token_ids(ids, t.get().vocab_size())))
                 .attr("decode")("utf-8", "replace");
           }, py::arg("ids"), "The text of token ids (invalid UTF-8 replaced by U+FFFD)")
      .def("decode_bytes", [](const TokenizerRef& t, const py::handle& ids) {
             return py::bytes(t.get().decode(token_ids(ids, t.get().vocab_size())));
           }, py::arg("ids"), "The exact bytes of token ids");

  auto model = py::class_<LoadedModel, std::shared_ptr<LoadedModel>>(
      m, "Model", "A model directory, loaded as `difftx generate --model DIR` loads it");
  model.def(py::init(&load), py::arg("dir"))
      .def_readonly("dir", &LoadedModel::dir)
      .def_property_readonly("config", [](const LoadedModel& l) {
        return json_to_python(config_to_json(l.model->config));
      })
      .def_property_readonly("vocab_size", [](const LoadedModel& l) { return l.model->config.vocab_size; })
      .def_property_readonly("num_parameters", [](const LoadedModel& l) { return l.model->layout.num_parameters(); })
      .def_property_readonly("parameter_names", [](const LoadedModel& l) {
        std::vector<std::string> names;
        for (const auto& spec : l.model->layout.tensors) names.push_back(spec.name);
        return names;
      })
      .def_property_readonly("tokenizer", [](const std::shared_ptr<LoadedModel>& l) -> py::object {
        if (!l->tokenizer) return py::none();
        return py::cast(TokenizerRef{l});
      }, "The directory's tokenizer, or None without one")
      .def("logits", &logits, py::arg("ids"), "numpy float32 [T, vocab], as `difftx inspect` writes")
      .def("loss", &loss, py::arg("ids"), "Mean next-token cross-entropy over the sequence")
      .def("loss_and_grads", &loss_and_grads, py::arg("ids"),
           "(loss, {parameter name: numpy gradient}) of the next-token loss")
      .def("attention", &attention, py::arg("ids"), py::arg("threshold") = 0.1,
           "{'layers': [maps per layer], 'stats': attention statistics}");
  bind_generate(model);
}

}  // namespace difftx::python
