#pragma once
// Continuous batching. One thread owns the model and a KvSession of --parallel rows. Each step
// it admits queued sequences into free rows (prefill and first token), then advances every
// active sequence by one token in a single batched decode (the matrix products see one row per
// sequence); a sequence leaves its row the step it finishes or its client goes away, and the
// next queued one takes the row. Token handling is infer/sequence_text.h, as in generate().
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "infer/generate.h"
#include "model/params.h"

namespace difftx {
class Tokenizer;
}

namespace difftx::serve {

// One HTTP request: the outputs of its prompts, written by the scheduler thread and read by
// the HTTP thread under `mu` (cv is notified on every change).
struct RequestState {
  struct Output {
    std::string unread;  // text produced but not yet sent (streaming)
    bool finished = false;
    Generated result;    // complete when finished; finish_reason "cancelled" if dropped
  };
  explicit RequestState(size_t prompts) : outputs(prompts) {}
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Output> outputs;
  std::atomic<bool> cancelled{false};  // the client went away: free the rows
  bool all_finished() const;           // call with mu held
};

struct Job {
  std::shared_ptr<RequestState> request;
  size_t index = 0;  // which prompt of the request
  std::vector<int32_t> prompt;
  GenerateOptions opts;  // the seed is already this prompt's
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer* tok, int64_t parallel, const RunOptions& run_opts);
  ~Scheduler();  // cancels whatever is left and joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void submit(Job job);
  // Blocks until no sequence is active or queued, or `seconds` pass; then cancels the rest.
  // Returns how many were cancelled.
  int64_t drain(double seconds);
  int64_t active() const { return active_count_.load(); }
  int64_t queued() const;

 private:
  struct Slot;
  void run();
  void admit(Slot& slot, Job job);
  void finish(Slot& slot, const std::string& reason);

  const Model& model_;
  const Tokenizer* tok_;
  int64_t parallel_, sample_vocab_;
  RunOptions run_opts_;
  std::vector<Slot> slots_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::atomic<int64_t> active_count_{0};
  std::atomic<bool> cancel_all_{false};
  std::thread thread_;
};

}  // namespace difftx::serve
