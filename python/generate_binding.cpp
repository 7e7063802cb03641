// Model.generate and Model.stream: the library's generate() (infer/generate.h) with the CLI's
// options and defaults (a generation_config.json in the model directory gives the sampling
// defaults; arguments given win). A stream runs generate() on a worker thread and hands each
// token to the Python iterator through a queue.
#include <pybind11/stl.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "bindings.h"
#include "core/error.h"
#include "infer/generate.h"

namespace difftx::python {
namespace {

struct GenerateArgs {
  py::object prompt;
  int64_t max_tokens = 128;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int64_t> top_k;
  uint64_t seed = 0;
  py::object stop;
  bool sliding_window = false;
  std::string precision = "fp32";
};

// Everything generate() needs, converted while the GIL is held.
struct Request {
  std::vector<int32_t> prompt;
  GenerateOptions options;
};

Request make_request(const LoadedModel& m, const GenerateArgs& a) {
  Request r;
  if (py::isinstance<py::str>(a.prompt)) {
    const std::string text = a.prompt.cast<std::string>();
    if (!m.tokenizer) throw Error(m.dir + " has no tokenizer; give the prompt as token ids");
    if (text.empty()) throw py::value_error("the prompt must not be empty");
    r.prompt = m.tokenizer->encode_with_special(text);
  } else {
    r.prompt = token_ids(a.prompt, static_cast<int32_t>(m.model->config.vocab_size));
  }
  if (a.max_tokens < 0) throw py::value_error("max_tokens must be >= 0");
  GenerateOptions& g = r.options;
  g.max_tokens = a.max_tokens;
  g.seed = a.seed;
  g.sliding_window = a.sliding_window;
  g.run.precision = precision_named(a.precision);
  const std::string gen_config = m.dir + "/generation_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(gen_config, ec)) {
    const GenerationConfig file = read_generation_config(gen_config);
    g.sampling = sampling_from(file);
    g.eos_ids = file.eos_ids;
  }
  if (a.temperature) g.sampling.temperature = *a.temperature;
  if (a.top_k) g.sampling.top_k = *a.top_k;
  if (a.top_p) g.sampling.top_p = *a.top_p;
  if (a.repetition_penalty) g.sampling.repetition_penalty = *a.repetition_penalty;
  try {
    validate(g.sampling);
  } catch (const Error& e) {
    throw py::value_error(e.what());
  }
  if (py::isinstance<py::str>(a.stop)) g.stops.push_back(a.stop.cast<std::string>());
  else if (!a.stop.is_none()) g.stops = a.stop.cast<std::vector<std::string>>();
  return r;
}

py::dict result_dict(const Generated& g) {
  py::dict d;
  d["text"] = py::bytes(g.text).attr("decode")("utf-8", "replace");
  d["ids"] = g.ids;
  d["finish_reason"] = g.finish_reason;
  return d;
}

py::dict generate_once(const LoadedModel& m, const GenerateArgs& a) {
  const Request r = make_request(m, a);
  std::vector<Generated> out;
  {
    py::gil_scoped_release release;
    out = generate(*m.model, m.tokenizer.get(), {r.prompt}, r.options);
  }
  return result_dict(out.at(0));
}

// The iterator Model.stream returns: yields (id, text) per accepted token; text is "" while a
// UTF-8 character or a possible stop string is held back. Dropping it stops the worker.
class TokenStream {
 public:
  TokenStream(ModelRef model, Request request) : model_(std::move(model)) {
    worker_ = std::thread([this, r = std::move(request)] { run(r); });
  }
  ~TokenStream() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    py::gil_scoped_release release;  // the worker never takes the GIL; do not hold it here
    worker_.join();
  }
  py::tuple next() {
    Item item;
    {
      py::gil_scoped_release release;
      std::unique_lock<std::mutex> lock(mu_);
      ready_.wait(lock, [&] { return !queue_.empty() || done_; });
      if (queue_.empty()) {
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
        throw py::stop_iteration();
      }
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    return py::make_tuple(item.id, py::bytes(item.text).attr("decode")("utf-8", "replace"));
  }

 private:
  struct Item {
    int32_t id = 0;
    std::string text;
  };
  struct Cancelled {};
  void run(const Request& r) {
    try {
      const LoadedModel& m = *model_;
      generate(*m.model, m.tokenizer.get(), {r.prompt}, r.options,
               [this](int64_t, const std::string& text, int32_t id) {
                 std::lock_guard<std::mutex> lock(mu_);
                 if (cancelled_) throw Cancelled{};
                 queue_.push_back({id, text});
                 ready_.notify_one();
               });
    } catch (const Cancelled&) {
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    ready_.notify_one();
  }

  ModelRef model_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Item> queue_;
  bool done_ = false, cancelled_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace

void bind_generate(py::class_<LoadedModel, std::shared_ptr<LoadedModel>>& model_class) {
  py::class_<TokenStream>(model_class, "TokenStream", "Iterator of (id, text) per generated token")
      .def("__iter__", [](TokenStream& s) -> TokenStream& { return s; })
      .def("__next__", &TokenStream::next);

  auto args = [](py::object prompt, int64_t max_tokens, std::optional<double> temperature,
                 std::optional<double> top_p, std::optional<int64_t> top_k,
                 std::optional<double> repetition_penalty, uint64_t seed, py::object stop,
                 bool sliding_window, std::string precision) {
    return GenerateArgs{std::move(prompt), max_tokens, temperature, top_p, repetition_penalty,
                        top_k, seed, std::move(stop), sliding_window, std::move(precision)};
  };
  auto stream = [args](const std::shared_ptr<LoadedModel>& m, py::object prompt, int64_t max_tokens,
                       std::optional<double> temperature, std::optional<double> top_p,
                       std::optional<int64_t> top_k, std::optional<double> repetition_penalty,
                       uint64_t seed, py::object stop, bool sliding_window, std::string precision) {
    const GenerateArgs a = args(prompt, max_tokens, temperature, top_p, top_k, repetition_penalty,
                                seed, stop, sliding_window, precision);
    return std::make_unique<TokenStream>(m, make_request(*m, a));
  };
  model_class.def(
      "generate",
      [args, stream](const std::shared_ptr<LoadedModel>& m, py::object prompt, int64_t max_tokens,
                     std::optional<double> temperature, std::optional<double> top_p,
                     std::optional<int64_t> top_k, std::optional<double> repetition_penalty,
                     uint64_t seed, py::object stop, bool sliding_window, std::string precision,
                     bool streaming) -> py::object {
        if (streaming)
          return py::cast(stream(m, prompt, max_tokens, temperature, top_p, top_k,
                                 repetition_penalty, seed, stop, sliding_window, precision));
        return generate_once(*m, args(prompt, max_tokens, temperature, top_p, top_k,
                                      repetition_penalty, seed, stop, sliding_window, precision));
      },
      py::arg("prompt"), py::arg("max_tokens") = 128, py::arg("temperature") = py::none(),
      py::arg("top_p") = py::none(), py::arg("top_k") = py::none(),
      py::arg("repetition_penalty") = py::none(), py::arg("seed") = 0,
      py::arg("stop") = py::none(), py::arg("sliding_window") = false,
      py::arg("precision") = "fp32", py::arg("stream") = false,
      "Generate from a prompt (text or ids) as `difftx generate` does: "
      "{'text', 'ids', 'finish_reason'}, or with stream=True an iterator of (id, text)");
  model_class.def("stream", stream, py::arg("prompt"), py::arg("max_tokens") = 128,
                  py::arg("temperature") = py::none(), py::arg("top_p") = py::none(),
                  py::arg("top_k") = py::none(), py::arg("repetition_penalty") = py::none(),
                  py::arg("seed") = 0, py::arg("stop") = py::none(),
                  py::arg("sliding_window") = false, py::arg("precision") = "fp32",
                  "generate(..., stream=True): an iterator of (id, text) per token");
}

}  // namespace difftx::python
