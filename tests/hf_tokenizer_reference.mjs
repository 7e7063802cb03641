// Reference ids for the tokenizer.json tests: encodes a varied corpus with npm
// @huggingface/tokenizers (the JS port of Hugging Face `tokenizers`) for the GPT-2, Llama-3 and
// Llama-2 tokenizer.json files that scripts/fetch-data.sh puts in CACHE/hf, and writes, per
// family, OUT/<family>.json: [{name, text, bytes (base64), ids, ids_plain, decoded, special}].
//   text       the sample as the reference sees it (bytes that are not UTF-8 become U+FFFD)
//   bytes      the sample's own bytes (difftx must round-trip them exactly)
//   ids        encode(text) with the post-processor's special tokens; ids_plain without
//   decoded    decode(ids_plain) (no clean-up of spaces)
//   special    the sample holds special-token text
// tests/test_tokenizer_hf.cpp (HfReference.*) compares difftx with these id for id.
//
// Usage: node tests/hf_tokenizer_reference.mjs CACHE OUT
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const [cacheArg, out] = process.argv.slice(2);
const cache = process.env.DIFFTX_CACHE || cacheArg;  // as the C++ tests choose it
if (!out) {
  console.error("usage: node hf_tokenizer_reference.mjs CACHE OUT");
  process.exit(2);
}
const { Tokenizer } = await import(join(cache, "hf/tokenizers-js/tokenizers.mjs"));
const repo = join(fileURLToPath(import.meta.url), "../..");

const samples = [];
const add = (name, bytes, special = false) => samples.push({ name, bytes: Buffer.from(bytes), special });
const addText = (name, text, special = false) => add(name, Buffer.from(text, "utf8"), special);

// Real text: State of the Union addresses (whole) and Moby-Dick (slices).
const sotu = readdirSync(join(cache, "sotu")).filter((f) => f.endsWith(".txt")).sort();
for (const i of [0, 60, 120, 180, sotu.length - 1]) add(`sotu/${sotu[i]}`, readFileSync(join(cache, "sotu", sotu[i])));
const moby = readFileSync(join(cache, "moby-dick/data.txt"));
for (const at of [0, 200000, 600000, 1100000]) {
  let a = at, b = Math.min(moby.length, at + 30000);
  while (a > 0 && (moby[a] & 0xc0) === 0x80) --a;  // whole characters
  while (b < moby.length && (moby[b] & 0xc0) === 0x80) ++b;
  add(`moby-dick@${at}`, moby.subarray(a, b));
}
// Code.
for (const f of ["src/io/tokenizer_hf_bpe.cpp", "scripts/fetch-data.sh", "tests/hf_tokenizer_reference.mjs"])
  add(`code/${f}`, readFileSync(join(repo, f)));
addText("code/python", "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n\n\tif x != None:\n\t\tpass\n");
// Scripts, emoji, whitespace, numbers, contractions.
addText("emoji", "👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 😀😃😄 ❤️‍🔥 🧑🏿‍💻 ✌︎ 🏳️‍🌈 a😀b");
addText("cjk", "東京は日本の首都です。中文测试，简体与繁體。한국어 텍스트입니다. カタカナ ﾊﾝｶｸ");
addText("scripts", "Привет, мир! Γειά σου Κόσμε. مرحبا بالعالم שלום עולם नमस्ते दुनिया สวัสดีชาวโลก café naïve Ångström e\u0301");
addText("whitespace", "a  b\t\tc\n\n\n  d   \r\n e\u00a0f\u3000g    \n\n \t \u2003x\u2028y   ");
addText("spaces-only", "     ");
addText("newlines-only", "\n\n\r\n\n");
addText("numbers", "1234567890 3.14159 1,000,000 12 123 1234 12345 ٣٤٥ ¹²³ ½ Ⅻ");
addText("contractions", "I'm you're they've he'll she'd it's IT'S DON'T We'Ve o'clock rock'n'roll");
addText("punctuation", "Hello!!! What?! ... --- (parens) [brackets] {braces} <angle> \"quotes\" 'single' `back` @#$%^&*_+=|\\/~");
addText("leading-space", " leading space and trailing space ");
addText("single-char", "a");
addText("empty", "");
add("invalid-utf8", [0x61, 0x62, 0x63, 0xff, 0xfe, 0x20, 0x64, 0x65, 0x66, 0x20, 0xc3, 0x28, 0x20, 0xe2, 0x82,
                     0x20, 0x65, 0x6e, 0x64, 0x20, 0xed, 0xa0, 0x80, 0x21, 0x80, 0xf0, 0x9f, 0x98]);
add("invalid-utf8-words", Buffer.concat([Buffer.from("word\xe9s caf"), Buffer.from([0xe9]), Buffer.from(" ok\n")]));
// Special-token text inside ordinary text (each family has some of these).
addText("special-tokens", "<|endoftext|>Hello<|endoftext|> world <s>start</s> <|begin_of_text|>x<|eot_id|>y " +
                          "<unk> <|start_header_id|>user<|end_header_id|>\n\nhi<s><s>", true);
addText("special-like", "<|endoftext| <s <|begin_of_text|", false);

// Random strings from a mixed pool (seeded: the same every run).
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const pool = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", ..."     \n\t\r",
              ..."'.,;:!?-_()[]{}<>\"/\\@#$%^&*+=|~`", ..."éèàçñüößøåæœ", ..."東京中文한국어カ", ..."😀👍🏽🇫🇷",
              "\u0301", "\u00a0", "\u3000", "'s", "'ll", "<s>", "</s>", "<|endoftext|>", "▁", "Ġ"];
for (let k = 0; k < 300; ++k) {
  let s = "";
  for (let n = 1 + rand(40); n > 0; --n) s += pool[rand(pool.length)];
  addText(`random-${k}`, s, /<s>|<\/s>|<\|endoftext\|>/.test(s));
}

mkdirSync(out, { recursive: true });
for (const family of ["gpt2", "llama3", "llama2"]) {
  const json = JSON.parse(readFileSync(join(cache, "hf", family, "tokenizer.json"), "utf8"));
  const tok = new Tokenizer(json, {});
  const rows = samples.map(({ name, bytes, special }) => {
    const text = new TextDecoder().decode(bytes);
    const ids = tok.encode(text).ids;
    const ids_plain = tok.encode(text, { add_special_tokens: false }).ids;
    const decoded = ids_plain.length ? tok.decode(ids_plain, { clean_up_tokenization_spaces: false }) : "";
    return { name, text, bytes: bytes.toString("base64"), ids, ids_plain, decoded, special };
  });
  writeFileSync(join(out, `${family}.json`), JSON.stringify(rows));
  console.log(`${family}: ${rows.length} samples, ${rows.reduce((a, r) => a + r.ids.length, 0)} ids`);
}
