#include "serve/server.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "infer/sampling.h"
#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "serve/completion_request.h"
#include "serve/scheduler.h"

namespace difftx::serve {
namespace {

using nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(dump({{"error", {{"message", message}, {"code", status}}}}), "application/json");
}

// OpenAI names: an end-of-text id and a stop string are both "stop".
std::string openai_reason(const std::string& r) { return r == "eos" ? "stop" : r; }

std::string model_name(const std::string& dir) {
  const auto name = std::filesystem::path(dir).lexically_normal().filename().string();
  return name.empty() ? dir : name;
}

class Server {
 public:
  Server(const ServeOptions& o)
      : o_(o), model_(load_model(o.model_dir)), name_(model_name(o.model_dir)) {
    check(has_tokenizer(o.model_dir), o.model_dir,
          " has no tokenizer; the server needs one to read text prompts");
    tok_ = load_tokenizer(o.model_dir);
    const std::string gen_config = o.model_dir + "/generation_config.json";
    std::error_code ec;
    if (std::filesystem::is_regular_file(gen_config, ec))
      eos_ids_ = read_generation_config(gen_config).eos_ids;
    scheduler_ = std::make_unique<Scheduler>(*model_, tok_.get(), o.parallel, RunOptions{});
    routes();
  }

  void run(const std::atomic<bool>* stop) {
    int port = o_.port;
    if (port == 0) {
      port = http_.bind_to_any_port(o_.host);
      check(port > 0, "cannot listen on ", o_.host, ": no free port");
    } else {
      check(http_.bind_to_port(o_.host, port), "cannot listen on ", o_.host, ":", port,
            " (in use or not allowed); choose another --port");
    }
    std::fprintf(stderr, "difftx: serve: %s on http://%s:%d (parallel %lld)\n", name_.c_str(),
                 o_.host.c_str(), port, static_cast<long long>(o_.parallel));
    std::thread watcher([&] {
      while (!stop->load() && !stopped_) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (stopped_) return;
      draining_ = true;  // new completions get 503 from here on
      const int64_t left = scheduler_->active() + scheduler_->queued();
      std::fprintf(stderr, "difftx: serve: stopping; finishing %lld in-flight sequences (up to %g s)\n",
                   static_cast<long long>(left), o_.drain_seconds);
      const int64_t cancelled = scheduler_->drain(o_.drain_seconds);
      if (cancelled > 0)
        std::fprintf(stderr, "difftx: serve: cancelled %lld sequences still running\n",
                     static_cast<long long>(cancelled));
      http_.stop();
    });
    http_.listen_after_bind();
    stopped_ = true;
    watcher.join();
  }

 private:
  ServeOptions o_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::vector<int32_t> eos_ids_;
  std::string name_;
  std::unique_ptr<Scheduler> scheduler_;
  httplib::Server http_;
  std::atomic<bool> draining_{false}, stopped_{false};
  std::atomic<uint64_t> next_id_{1};

  void routes() {
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (o_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      if (req.get_header_value("Authorization") == "Bearer " + o_.api_key)
        return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, 401, "missing or wrong API key: send the header Authorization: Bearer KEY");
      return httplib::Server::HandlerResponse::Handled;
    });
    http_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "difftx: serve: %s %s %s -> %d (%zu bytes in)\n",
                   req.remote_addr.c_str(), req.method.c_str(), req.path.c_str(), res.status,
                   req.body.size());
    });
    http_.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                   std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, 500, what);
    });
    http_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) send_error(res, res.status, "no such route or method");
    });
    http_.set_payload_max_length(8 << 20);
    http_.set_read_timeout(30, 0);
    http_.set_write_timeout(30, 0);
    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump({{"status", draining_ ? "stopping" : "ok"},
                            {"active", scheduler_->active()},
                            {"queued", scheduler_->queued()}}),
                      "application/json");
    });
    http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump({{"object", "list"},
                            {"data", json::array({{{"id", name_},
                                                   {"object", "model"},
                                                   {"owned_by", "difftx"},
                                                   {"max_model_len",
                                                    model_->config.max_position_embeddings}}})}}),
                      "application/json");
    });
    http_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      completions(req, res);
    });
    http_.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
      send_error(res, 400,
                 "chat completions are not supported: difftx cannot render the model's chat "
                 "template; use /v1/completions with a prompt");
    });
  }

  void completions(const httplib::Request& req, httplib::Response& res) {
    if (draining_) return send_error(res, 503, "the server is shutting down");
    CompletionRequest r;
    std::vector<std::vector<int32_t>> prompts;
    const int64_t ctx = model_->config.max_position_embeddings;
    try {
      r = parse_completion_request(req.body);
      validate(r.gen.sampling);
      for (size_t i = 0; i < r.prompts.size(); ++i) {
        prompts.push_back(tok_->encode_with_special(r.prompts[i]));
        const int64_t n = static_cast<int64_t>(prompts.back().size());
        check(n > 0, "prompt ", i + 1, " encodes to no tokens");
        check(n < ctx, "prompt ", i + 1, " is ", n, " tokens; the model's context is ", ctx);
        if (!r.max_tokens_given) r.gen.max_tokens = std::min(r.gen.max_tokens, ctx - n);
        check(n + r.gen.max_tokens <= ctx, "max_tokens (", r.gen.max_tokens, ") plus prompt ",
              i + 1, " (", n, " tokens) exceed the model's context of ", ctx, " tokens");
      }
    } catch (const Error& e) {
      return send_error(res, 400, e.what());
    }
    if (eos_ids_.size()) r.gen.eos_ids = eos_ids_;
    auto state = std::make_shared<RequestState>(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      Job job{state, i, prompts[i], r.gen};
      job.opts.seed = r.gen.seed + i;  // as generate() seeds the prompts of a batch
      scheduler_->submit(std::move(job));
    }
    const std::string id = "cmpl-" + std::to_string(next_id_++);
    const auto created = static_cast<int64_t>(std::time(nullptr));
    auto chunk = [this, id, created](size_t index, const std::string& text, const json& reason) {
      return json{{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", name_},
                  {"choices", json::array({{{"index", index}, {"text", text},
                                            {"logprobs", nullptr}, {"finish_reason", reason}}})}};
    };
    if (!r.stream) {
      std::unique_lock<std::mutex> lock(state->mu);
      state->cv.wait(lock, [&] { return state->all_finished(); });
      json choices = json::array();
      int64_t prompt_tokens = 0, completion_tokens = 0;
      for (size_t i = 0; i < state->outputs.size(); ++i) {
        const Generated& g = state->outputs[i].result;
        choices.push_back({{"index", i}, {"text", g.text}, {"logprobs", nullptr},
                           {"finish_reason", openai_reason(g.finish_reason)}});
        prompt_tokens += static_cast<int64_t>(prompts[i].size());
        completion_tokens += static_cast<int64_t>(g.ids.size());
      }
      res.set_content(dump({{"id", id}, {"object", "text_completion"}, {"created", created},
                            {"model", name_}, {"choices", choices},
                            {"usage", {{"prompt_tokens", prompt_tokens},
                                       {"completion_tokens", completion_tokens},
                                       {"total_tokens", prompt_tokens + completion_tokens}}}}),
                      "application/json");
      return;
    }
    // Server-sent events: a chunk per piece of text, one with the finish_reason per prompt,
    // then [DONE]. A failed write (client gone) cancels the request, freeing its rows.
    auto sent_final = std::make_shared<std::vector<bool>>(prompts.size(), false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [state, sent_final, chunk](size_t, httplib::DataSink& sink) {
          std::vector<std::pair<size_t, std::string>> texts;
          std::vector<std::pair<size_t, std::string>> finals;
          std::vector<int64_t> final_tokens;
          {
            std::unique_lock<std::mutex> lock(state->mu);
            // Wake on new text or a finish; the timeout only bounds the wait.
            state->cv.wait_for(lock, std::chrono::milliseconds(200), [&] {
              for (size_t i = 0; i < state->outputs.size(); ++i)
                if (!state->outputs[i].unread.empty() ||
                    (state->outputs[i].finished && !(*sent_final)[i]))
                  return true;
              return false;
            });
            for (size_t i = 0; i < state->outputs.size(); ++i) {
              auto& o = state->outputs[i];
              if (!o.unread.empty()) texts.emplace_back(i, std::move(o.unread));
              o.unread.clear();
              if (o.finished && !(*sent_final)[i]) {
                (*sent_final)[i] = true;
                finals.emplace_back(i, openai_reason(o.result.finish_reason));
                final_tokens.push_back(static_cast<int64_t>(o.result.ids.size()));
              }
            }
          }
          auto send = [&](const json& j) {
            const std::string line = "data: " + dump(j) + "\n\n";
            return sink.write(line.data(), line.size());
          };
          for (const auto& [i, text] : texts)
            if (!send(chunk(i, text, nullptr))) return state->cancelled = true, false;
          // The last chunk of a prompt also says how many tokens it generated (as vLLM's
          // stream_options.include_usage does, here per choice).
          for (size_t k = 0; k < finals.size(); ++k) {
            json last = chunk(finals[k].first, "", finals[k].second);
            last["usage"] = {{"completion_tokens", final_tokens[k]}};
            if (!send(last)) return state->cancelled = true, false;
          }
          bool all = true;
          for (bool f : *sent_final) all = all && f;
          if (all) {
            static const std::string done = "data: [DONE]\n\n";
            if (!sink.write(done.data(), done.size())) return state->cancelled = true, false;
            sink.done();
          }
          return true;
        },
        // Runs however the response ends: an unfinished request is cancelled.
        [state](bool) { state->cancelled = true; });
  }
};

}  // namespace

void serve(const ServeOptions& o, const std::atomic<bool>* stop) {
  check(o.parallel >= 1 && o.parallel <= 256, "parallel must be in [1, 256]");
  Server server(o);
  server.run(stop);
}

}  // namespace difftx::serve
