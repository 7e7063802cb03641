#include "infer/sequence_text.h"

#include <algorithm>

#include "io/tokenizer.h"

namespace difftx {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of some stop string: those
// bytes might still become a stop, so they are held back.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t keep = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > keep; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  return keep;
}

}  // namespace

SequenceText::SequenceText(const Tokenizer* tok, const std::vector<std::string>& stops,
                           const std::vector<int32_t>& eos_ids, int64_t max_tokens)
    : tok_(tok), stops_(&stops), eos_ids_(&eos_ids), max_tokens_(max_tokens) {
  if (tok) decoder_ = std::make_unique<StreamingDecoder>(*tok);
}
SequenceText::~SequenceText() = default;
SequenceText::SequenceText(SequenceText&&) noexcept = default;
SequenceText& SequenceText::operator=(SequenceText&&) noexcept = default;

std::string SequenceText::accept(int32_t id) {
  const auto& eos = *eos_ids_;
  const bool is_eos = eos.empty() ? tok_ && id == tok_->eos_id()
                                  : std::find(eos.begin(), eos.end(), id) != eos.end();
  if (is_eos) {
    finish("eos");
    return {};
  }
  out_.ids.push_back(id);
  const bool full = static_cast<int64_t>(out_.ids.size()) >= max_tokens_;
  std::string ready;
  if (decoder_) {
    pending_ += decoder_->push(id);
    for (const auto& stop : *stops_) {
      const size_t at = pending_.find(stop);
      if (at != std::string::npos) {
        pending_.resize(at);
        finish("stop");
      }
    }
    if (!done_ && full) pending_ += decoder_->finish();
    const size_t hold = done_ || full ? 0 : held_back(pending_, *stops_);
    ready = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, ready.size());
    out_.text += ready;
  }
  if (!done_ && full) finish("length");
  return ready;
}

}  // namespace difftx
