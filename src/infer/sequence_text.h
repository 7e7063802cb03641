#pragma once
// What happens to each sampled token of one sequence: the end-of-text check, the streaming
// decode (a UTF-8 character split across tokens is emitted whole), stop strings (text that
// might start one is held back until it cannot), and max_tokens. Shared by generate() and the
// server's scheduler, so both give the same text for the same ids.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "infer/generate.h"

namespace difftx {

class Tokenizer;
class StreamingDecoder;

class SequenceText {
 public:
  // tok may be null (ids only, stops ignored); stops, eos_ids as in GenerateOptions.
  SequenceText(const Tokenizer* tok, const std::vector<std::string>& stops,
               const std::vector<int32_t>& eos_ids, int64_t max_tokens);
  ~SequenceText();
  SequenceText(SequenceText&&) noexcept;
  SequenceText& operator=(SequenceText&&) noexcept;

  // Accepts `id`; returns the text now safe to emit (possibly empty). Sets done() at the
  // end-of-text id (not added to the output), a stop string (cut before it) or max_tokens.
  std::string accept(int32_t id);
  bool done() const { return done_; }
  // For a sequence that ends early for another reason (e.g. max_tokens 0).
  void finish(const std::string& reason) {
    done_ = true;
    out_.finish_reason = reason;
  }
  const Generated& out() const { return out_; }
  Generated take() { return std::move(out_); }

 private:
  const Tokenizer* tok_;
  const std::vector<std::string>* stops_;
  const std::vector<int32_t>* eos_ids_;
  int64_t max_tokens_;
  Generated out_;
  std::unique_ptr<StreamingDecoder> decoder_;
  std::string pending_;  // decoded text not yet emitted
  bool done_ = false;
};

}  // namespace difftx
