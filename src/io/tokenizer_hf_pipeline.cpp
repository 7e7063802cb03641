// tokenizer.json as a whole: added tokens, sections, post-processor (see tokenizer_hf_pipeline.h).
#include "io/tokenizer_hf_pipeline.h"

#include <algorithm>

namespace difftx::hf {

Pipeline::Pipeline(std::string_view json_text, const std::string& where) : where_(where) {
  const Json j = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && j.is_object(), where, " is not a JSON object (a Hugging Face tokenizer.json)");
  try {
    const Json* model = field(j, "model");
    check(model != nullptr, where, ": \"model\" is missing");
    model_ = std::make_unique<BpeModel>(*model, "model");
    vocab_size_ = model_->size();
    normalizer_ = parse_normalizer(j.value("normalizer", Json()), "normalizer");
    pre_tokenizer_ = parse_pre_tokenizer(j.value("pre_tokenizer", Json()), "pre_tokenizer");
    decoder_ = std::make_unique<Decoder>(j.value("decoder", Json()), "decoder");
    if (const Json* added = field(j, "added_tokens")) parse_added_tokens(*added);
    if (model_->unk_id() < 0 && !model_->unk_token().empty()) {
      const int32_t id = token_id(model_->unk_token());
      check(id >= 0, "model.unk_token \"", model_->unk_token(),
            "\" is neither in model.vocab nor an added token");
      model_->set_unk_id(id);
    }
    parse_post_processor(j.value("post_processor", Json()), "post_processor");
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  } catch (const std::exception& e) {  // a JSON type error the checks above missed
    throw Error(where + ": malformed tokenizer.json (" + e.what() + ")");
  }
}

Pipeline::~Pipeline() = default;

void Pipeline::parse_added_tokens(const Json& list) {
  check(list.is_array(), "added_tokens must be a list");
  added_.reserve(list.size());
  vocab_size_ = model_->size();
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = element("added_tokens", i);
    const Json& t = list[i];
    check(t.is_object(), path, " must be an object");
    AddedToken a;
    a.id = static_cast<int32_t>(get_int(t, "id", path, -1, 0, (int64_t{1} << 30) - 1));
    check(a.id >= 0, child(path, "id"), " is missing");
    a.content = get_string(t, "content", path);
    check(!a.content.empty(), child(path, "content"), " must not be empty");
    a.special = get_bool(t, "special", path, false);
    a.lstrip = get_bool(t, "lstrip", path, false);
    a.rstrip = get_bool(t, "rstrip", path, false);
    a.normalized = get_bool(t, "normalized", path, !a.special);
    get_bool(t, "single_word", path, false);  // type-checked; ignored like the JS reference
    const std::string* in_vocab = model_->token(a.id);
    check(in_vocab == nullptr || *in_vocab == a.content, child(path, "id"), " = ", a.id,
          " is already the id of \"", in_vocab ? *in_vocab : "", "\" in model.vocab");
    check(added_by_id_.emplace(a.id, added_.size()).second, child(path, "id"), " = ", a.id,
          " is given to two added tokens");
    vocab_size_ = std::max(vocab_size_, a.id + 1);
    added_.push_back(std::move(a));
  }
  // Matchers after added_ stops growing (they point into it).
  for (const AddedToken& a : added_) {
    const bool normalized = a.normalized && normalizer_ != nullptr;
    Matcher m{normalized ? normalizer_->normalize(a.content) : a.content, &a};
    if (m.text.empty()) continue;
    matchers_[normalized].push_back(std::move(m));
  }
  for (int set = 0; set < 2; ++set) {
    for (uint32_t k = 0; k < matchers_[set].size(); ++k)
      by_first_byte_[set][static_cast<uint8_t>(matchers_[set][k].text[0])].push_back(k);
    for (auto& bucket : by_first_byte_[set])
      std::stable_sort(bucket.begin(), bucket.end(), [&](uint32_t x, uint32_t y) {
        return matchers_[set][x].text.size() > matchers_[set][y].text.size();
      });
  }
}

void Pipeline::parse_post_processor(const Json& j, const std::string& path) {
  if (j.is_null()) return;
  const std::string type = type_of(j, path);
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    const Json* list = field(j, "processors");
    check(list && list->is_array(), child(path, "processors"), " must be a list");
    for (size_t i = 0; i < list->size(); ++i)
      parse_post_processor((*list)[i], element(child(path, "processors"), i));
    return;
  }
  if (type != "TemplateProcessing")
    unsupported(path, type, "TemplateProcessing, ByteLevel, Sequence");
  const Json* single = field(j, "single");
  const std::string spath = child(path, "single");
  check(single && single->is_array(), spath, " must be a list");
  const Json* specials = field(j, "special_tokens");
  bool seen_text = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& item = (*single)[i];
    const std::string ipath = element(spath, i);
    if (const Json* seq = field(item, "Sequence")) {
      check(get_string(*seq, "id", ipath + ".Sequence") == "A", ipath,
            ".Sequence.id must be \"A\" in the single template");
      check(!seen_text, spath, " holds the sequence twice");
      seen_text = true;
    } else if (const Json* sp = field(item, "SpecialToken")) {
      const std::string name = get_string(*sp, "id", ipath + ".SpecialToken");
      const Json* entry = specials ? field(*specials, name.c_str()) : nullptr;
      check(entry != nullptr, ipath, ": special token \"", name, "\" is not in ",
            child(path, "special_tokens"));
      const Json* ids = field(*entry, "ids");
      check(ids && ids->is_array(), child(path, "special_tokens"), "[\"", name, "\"].ids must be a list");
      for (const Json& id : *ids) {
        check(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < vocab_size(),
              child(path, "special_tokens"), "[\"", name, "\"].ids must be token ids below ",
              vocab_size());
        (seen_text ? suffix_ : prefix_).push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    } else {
      throw Error(ipath + " must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  check(seen_text, spath, " has no {\"Sequence\": {\"id\": \"A\"}}");
}

int32_t Pipeline::token_id(std::string_view content) const {
  for (const AddedToken& a : added_)
    if (a.content == content) return a.id;
  return model_->token_id(content);
}

std::vector<Pipeline::Section> Pipeline::split_added(std::string_view text,
                                                     bool normalized_set) const {
  std::vector<Section> out;
  const auto& buckets = by_first_byte_[normalized_set];
  const auto& matchers = matchers_[normalized_set];
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const Matcher* hit = nullptr;
    for (const uint32_t k : buckets[static_cast<uint8_t>(text[i])]) {
      const std::string& m = matchers[k].text;
      if (text.compare(i, m.size(), m) == 0) {
        hit = &matchers[k];
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({std::string(text.substr(start, i - start)), nullptr});
    out.push_back({hit->text, hit->token});
    i += hit->text.size();
    start = i;
  }
  if (start < text.size()) out.push_back({std::string(text.substr(start)), nullptr});
  for (size_t k = 0; k < out.size(); ++k) {
    if (!out[k].added) continue;
    if (out[k].added->lstrip && k > 0 && !out[k - 1].added)
      out[k - 1].text = std::string(trim_end(out[k - 1].text));
    if (out[k].added->rstrip && k + 1 < out.size() && !out[k + 1].added)
      out[k + 1].text = std::string(trim_start(out[k + 1].text));
  }
  return out;
}

void Pipeline::encode_section(std::string_view text, size_t section_index,
                              std::vector<int32_t>& out) const {
  std::string normalized = normalizer_ ? normalizer_->normalize(std::string(text)) : std::string(text);
  if (normalized.empty()) return;
  for (const Section& sub : split_added(normalized, /*normalized_set=*/true)) {
    if (sub.added) {
      out.push_back(sub.added->id);
      continue;
    }
    if (sub.text.empty()) continue;
    std::vector<std::string> pieces{sub.text};
    if (pre_tokenizer_) pre_tokenizer_->split(pieces, section_index);
    const size_t first = out.size();
    for (const std::string& p : pieces) model_->encode_piece(p, out);
    if (model_->fuse_unk() && model_->unk_id() >= 0) {  // runs of unk become one
      const int32_t unk = model_->unk_id();
      size_t w = first;
      for (size_t r = first; r < out.size(); ++r)
        if (!(out[r] == unk && w > first && out[w - 1] == unk)) out[w++] = out[r];
      out.resize(w);
    }
  }
}

std::vector<int32_t> Pipeline::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> out;
  if (add_special) out = prefix_;
  const std::vector<Section> sections = split_added(text, /*normalized_set=*/false);
  for (size_t k = 0; k < sections.size(); ++k) {
    if (sections[k].added)
      out.push_back(sections[k].added->id);
    else if (!sections[k].text.empty())
      encode_section(sections[k].text, k, out);
  }
  if (add_special) out.insert(out.end(), suffix_.begin(), suffix_.end());
  return out;
}

void Pipeline::decode_append(int32_t id, DecodeState& state, std::string& out) const {
  check(id >= 0 && id < vocab_size_, "token id ", id, " is out of range [0, ", vocab_size_, ")");
  const auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) {
    decoder_->decode_token(added_[it->second].content, true, state, out);
    return;
  }
  const std::string* token = model_->token(id);
  if (!token) return;  // a hole in the ids: nothing to print
  decoder_->decode_token(*token, false, state, out);
}

}  // namespace difftx::hf
