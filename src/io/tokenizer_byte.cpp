// The byte tokenizer: ids 0..255 are the bytes, 256 is <|endoftext|>.
#include "core/error.h"
#include "io/tokenizer.h"

namespace difftx {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kEos = 256;

  std::string kind() const override { return "byte"; }
  int32_t vocab_size() const override { return 257; }
  int32_t eos_id() const override { return kEos; }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<uint8_t>(text[i]);
    return ids;
  }

  void decode_append(int32_t id, DecodeState& state, std::string& out) const override {
    if (id < 0 || id > kEos)
      throw Error("token id " + std::to_string(id) +
                  " is out of range for the byte tokenizer (ids 0..256)");
    if (id == kEos)
      out += "<|endoftext|>";
    else
      out.push_back(static_cast<char>(id));
    state.any_output = true;
  }

  std::vector<SavedFile> files_to_save() const override { return {}; }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace difftx
