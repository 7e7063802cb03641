#pragma once
// The decoder of a tokenizer.json, run one token at a time (for streaming generation): the
// bytes a token adds at its place in a sequence. The decoders of `tokenizers` work on the
// whole list of token strings; difftx supports the chains whose result can be computed token
// by token with a little state (DecodeState), which covers GPT-2, Llama-3 and Llama-2 files:
//   ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence.
// After a Fuse (which joins all tokens into one string), Strip may only cut at the start
// (stop 0), Replace only a one-character String, and Metaspace is allowed; other steps after
// a Fuse are an Error (they would need the whole text).
//
// Differences from @huggingface/tokenizers, on purpose: byte tokens (<0xNN> with ByteFallback,
// byte symbols with ByteLevel) give their raw bytes, also when these are not valid UTF-8
// (the reference replaces such bytes by U+FFFD), so decode(encode(x)) == x for any bytes.
// Without a decoder, tokens are joined with a space, as in the reference.
#include <memory>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "io/tokenizer_hf_json.h"

namespace difftx::hf {

class Decoder {
 public:
  // j may be null (no decoder).
  Decoder(const Json& j, const std::string& path);
  ~Decoder();
  // Appends the bytes of token `piece` (its string in tokenizer.json); `added` says it is an
  // added token (ByteLevel passes those through unchanged).
  void decode_token(std::string piece, bool added, DecodeState& state, std::string& out) const;

  struct Step;

 private:
  void add(const Json& j, const std::string& path, bool& fused);
  std::vector<Step> steps_;
  bool none_ = true;  // no decoder at all
};

}  // namespace difftx::hf
