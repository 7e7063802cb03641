#pragma once
// Everything a Hugging Face tokenizer.json defines, as @huggingface/tokenizers (the JS port of
// `tokenizers`) runs it: added tokens cut out of the raw text first (longest match, leftmost;
// lstrip/rstrip trim the whitespace next to them; tokens with "normalized": true are matched
// again after the normalizer), then per remaining section the normalizer, the pre-tokenizer,
// the BPE model (fuse_unk over the section), and the post-processor's special tokens.
//
// Supported post-processors: TemplateProcessing (the "single" template), ByteLevel (no ids),
// Sequence of these. single_word on added tokens is ignored, as the JS reference does.
// The file is parsed with every field checked; an unsupported or malformed part is an Error
// naming its JSON path. Thread-safe after construction.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tokenizer.h"
#include "io/tokenizer_hf_bpe.h"
#include "io/tokenizer_hf_decoder.h"
#include "io/tokenizer_hf_text.h"

namespace difftx::hf {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, normalized = false;
};

class Pipeline {
 public:
  // json_text: the bytes of tokenizer.json; where: its name for error messages.
  Pipeline(std::string_view json_text, const std::string& where);
  ~Pipeline();

  // The ids of text, with the post-processor's special tokens when add_special.
  std::vector<int32_t> encode(std::string_view text, bool add_special) const;
  // Appends the bytes of one token (see Tokenizer::decode_append); Error for an id outside
  // 0..vocab_size()-1.
  void decode_append(int32_t id, DecodeState& state, std::string& out) const;

  int32_t vocab_size() const { return vocab_size_; }
  // The id of a token string (added tokens first), or -1.
  int32_t token_id(std::string_view content) const;
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  // The post-processor's special tokens before and after the text.
  const std::vector<int32_t>& special_prefix() const { return prefix_; }
  const std::vector<int32_t>& special_suffix() const { return suffix_; }

 private:
  struct Section {
    std::string text;
    const AddedToken* added;  // the section is this added token
  };
  // Cuts text at the added tokens of `set` (lstrip/rstrip applied to the neighbours).
  std::vector<Section> split_added(std::string_view text, bool normalized_set) const;
  void encode_section(std::string_view text, size_t section_index, std::vector<int32_t>& out) const;
  void parse_added_tokens(const Json& list);
  void parse_post_processor(const Json& j, const std::string& path);

  std::string where_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<AddedToken> added_;
  // What added tokens match: [0] in the raw text (their content), [1] in normalized text
  // (the normalizer applied to their content). Indexed by first byte, longest first.
  struct Matcher {
    std::string text;
    const AddedToken* token;
  };
  std::vector<Matcher> matchers_[2];
  std::vector<uint32_t> by_first_byte_[2][256];
  std::unordered_map<int32_t, size_t> added_by_id_;
  std::vector<int32_t> prefix_, suffix_;
  int32_t vocab_size_ = 0;
};

}  // namespace difftx::hf
