#include "serve/scheduler.h"

#include <chrono>
#include <cstdio>
#include <exception>

#include "core/rng.h"
#include "infer/kv_session.h"
#include "infer/sampling.h"
#include "infer/sequence_text.h"
#include "io/tokenizer.h"

namespace difftx::serve {

bool RequestState::all_finished() const {
  for (const auto& o : outputs)
    if (!o.finished) return false;
  return true;
}

struct Scheduler::Slot {
  Job job;
  std::vector<int32_t> history;  // prompt + generated (repetition penalty)
  std::unique_ptr<SequenceText> text;
  Rng rng{0};
  bool busy = false;
};

Scheduler::Scheduler(const Model& model, const Tokenizer* tok, int64_t parallel,
                     const RunOptions& run_opts)
    : model_(model), tok_(tok), parallel_(parallel), run_opts_(run_opts),
      slots_(static_cast<size_t>(parallel)) {
  const int64_t vocab = model.config.vocab_size;
  sample_vocab_ = tok ? std::min<int64_t>(vocab, tok->vocab_size()) : vocab;
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Scheduler::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
}

int64_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size());
}

int64_t Scheduler::drain(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until && (active() > 0 || queued() > 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t left = active() + queued();
  cancel_all_ = true;  // the scheduler thread ends them at its next step
  cv_.notify_all();
  return left;
}

// Hands the slot's text so far and, when it is done, its result to the waiting HTTP thread.
void Scheduler::finish(Slot& slot, const std::string& reason) {
  RequestState& r = *slot.job.request;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto& out = r.outputs[slot.job.index];
    out.result = slot.text->take();
    if (!reason.empty()) out.result.finish_reason = reason;
    out.finished = true;
  }
  r.cv.notify_all();
  slot.busy = false;
  slot.text.reset();
  slot.job = {};
  --active_count_;
}

void Scheduler::run() {
  const int64_t vocab = model_.config.vocab_size;
  KvSession session(model_, model_.config.max_position_embeddings, run_opts_, parallel_);
  // Passes `ready` text on; finishes the slot when its sequence is done.
  auto deliver = [&](Slot& s, const std::string& ready) {
    RequestState& r = *s.job.request;
    if (!ready.empty()) {
      {
        std::lock_guard<std::mutex> lock(r.mu);
        r.outputs[s.job.index].unread += ready;
      }
      r.cv.notify_all();
    }
    if (s.text->done()) finish(s, "");
  };
  auto accept = [&](Slot& s, const float* logits) {
    const int32_t id = sample_token(logits, sample_vocab_, s.history, s.job.opts.sampling, s.rng);
    const size_t before = s.text->out().ids.size();
    const std::string ready = s.text->accept(id);
    if (s.text->out().ids.size() > before) s.history.push_back(id);
    deliver(s, ready);
  };
  while (true) {
    // Admit queued jobs into free rows; sleep when there is nothing to do.
    std::vector<Job> admitted;
    std::vector<size_t> rows_for;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || active_count_ > 0; });
      if (stopping_) break;
      for (size_t i = 0; i < slots_.size() && !queue_.empty(); ++i) {
        if (slots_[i].busy) continue;
        slots_[i].busy = true;  // reserved under the lock so drain() sees it
        ++active_count_;
        slots_[i].job = std::move(queue_.front());
        queue_.pop_front();
        rows_for.push_back(i);
      }
    }
    try {
      for (size_t i : rows_for) {
        Slot& s = slots_[i];
        const GenerateOptions& o = s.job.opts;
        s.history = s.job.prompt;
        s.rng = Rng(o.seed);
        s.text = std::make_unique<SequenceText>(tok_, o.stops, o.eos_ids, o.max_tokens);
        if (s.job.request->cancelled || cancel_all_) {
          finish(s, "cancelled");
          continue;
        }
        if (o.max_tokens == 0) {
          s.text->finish("length");
          finish(s, "");
          continue;
        }
        accept(s, session.prefill(static_cast<int64_t>(i), s.job.prompt));
      }
      std::vector<int64_t> rows;
      std::vector<int32_t> next;
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        if (!s.busy) continue;
        if (s.job.request->cancelled || cancel_all_) {  // the client went away: free the row now
          finish(s, "cancelled");
          continue;
        }
        rows.push_back(static_cast<int64_t>(i));
        next.push_back(s.history.back());
      }
      if (rows.empty()) continue;
      const std::vector<float>& logits = session.decode(rows, next);
      for (size_t k = 0; k < rows.size(); ++k)
        accept(slots_[static_cast<size_t>(rows[k])], logits.data() + k * vocab);
    } catch (const std::exception& e) {
      // Requests were validated before they were queued; anything here ends every active one.
      std::fprintf(stderr, "difftx: serve: decode step failed: %s\n", e.what());
      for (auto& s : slots_)
        if (s.busy) {
          if (!s.text) s.text = std::make_unique<SequenceText>(tok_, s.job.opts.stops,
                                                               s.job.opts.eos_ids, 0);
          finish(s, "error");
        }
    }
  }
  // Stopping: nothing may wait forever on a result.
  for (auto& s : slots_)
    if (s.busy) {
      if (!s.text) s.text = std::make_unique<SequenceText>(tok_, s.job.opts.stops, s.job.opts.eos_ids, 0);
      finish(s, "cancelled");
    }
  for (auto& j : queue_) {
    Slot s;
    s.job = std::move(j);
    s.busy = true;
    ++active_count_;
    s.text = std::make_unique<SequenceText>(tok_, s.job.opts.stops, s.job.opts.eos_ids, 0);
    finish(s, "cancelled");
  }
  queue_.clear();
}

}  // namespace difftx::serve
