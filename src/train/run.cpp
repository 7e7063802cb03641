#include "train/run.h"

#include <algorithm>
#include <filesystem>

#include "analysis/attention_stats.h"
#include "core/error.h"
#include "core/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/extensions.h"
#include "model/presets.h"
#include "train/train_state.h"

namespace fs = std::filesystem;

namespace difftx {
namespace {
std::string absolute_path(const std::string& p) {
  return p.empty() ? p : fs::absolute(p).lexically_normal().string();
}

std::string config_text(const Config& c) { return nlohmann::json::parse(config_to_json(c)).dump(); }

// The model a request names (config file or preset), for a tokenizer of `vocab` ids.
Config requested_config(const RunRequest& r, int64_t vocab) {
  return !r.config_path.empty() ? load_config(r.config_path, LayoutDefaults::kOfficial)
                                : preset_config(r.preset, vocab);
}

// The model must be able to embed every id the tokenizer makes, and the tokenizer must be able
// to print every id the model can sample.
void check_vocabulary(const Config& c, const Tokenizer& tok) {
  check_field(c.vocab_size == tok.vocab_size(), "vocab_size", " of the model (", c.vocab_size,
              ") differs from the ", tok.kind(), " tokenizer's ", tok.vocab_size(), " ids: ",
              c.vocab_size < tok.vocab_size() ? "the model cannot embed every token"
                                              : "the model could sample ids the tokenizer cannot print",
              "; set vocab_size to ", tok.vocab_size(), " in the config");
}

void check_seq_fits(const RunSettings& s, const Config& c) {
  check_field(s.train.seq <= c.max_position_embeddings, "seq", " (", s.train.seq,
              ") exceeds the model's max_position_embeddings (", c.max_position_embeddings, ")");
  ext_check_seq(c, s.train.seq);
}
}  // namespace

MonitorRecord measure_attention(const Model& model, const std::vector<int32_t>& window, int64_t step) {
  StatisticsOptions so;
  so.activations = true;
  const AttentionStatistics st =
      attention_statistics(model, window.data(), 1, static_cast<int64_t>(window.size()), so);
  MonitorRecord r;
  r.step = step;
  r.sparsity = st.mean.sparsity;
  r.focus = st.mean.focus;
  r.entropy = st.mean.entropy;
  r.mean_abs = st.mean.mean_abs;
  r.max = st.mean.max;
  r.negative_share = st.mean.negative_share;
  if (st.diff)
    for (const auto& l : st.layers) r.lambda.push_back(l.lambda);
  r.logit_top1 = st.logits.top1;
  r.logit_median = st.logits.median;
  r.hidden_top1 = st.hidden.top1;
  r.hidden_median = st.hidden.median;
  return r;
}

TrainRun::TrainRun(const RunRequest& request)
    : dir_(request.dir), writer_(!request.comm || request.comm->root()) {
  check(!dir_.empty(), "no run directory given");
  RunSettings want = request.settings;
  want.data = absolute_path(want.data);
  want.val = absolute_path(want.val);
  const std::string cache_dir = request.cache_dir.empty() ? default_cache_dir() : request.cache_dir;
  std::error_code ec;
  const std::string state_path = (fs::path(dir_) / kTrainStateFile).string();
  std::unique_ptr<SafetensorsFile> state;
  TrainStateMeta meta;
  if (request.resume) {
    check(fs::is_directory(dir_, ec), "cannot resume ", dir_, ": no such run directory");
    check(fs::exists(state_path, ec), "cannot resume ", dir_, ": it holds no checkpoint ",
          kTrainStateFile);
    if (writer_) lock_ = std::make_unique<DirLock>(dir_);
    state = std::make_unique<SafetensorsFile>(SafetensorsFile::read(state_path));
    const auto it = state->metadata().find(kTrainStateKey);
    check(it != state->metadata().end(), state_path, " is not a difftx training state");
    meta = parse_train_state_meta(it->second, state_path);
    // Keys an older train_state lacks take the request's values.
    const RunSettings stored = settings_from_json(meta.options, want, state_path);
    settings_ = merge_for_resume(stored, want, request.given, meta.step, dir_);
    model_ = load_model(dir_);
    tok_ = load_tokenizer(dir_);
    check(meta.config.dump() == config_text(model_->config), state_path,
          " was written for another model config than ", dir_, "/config.json");
    if (!request.config_path.empty() || !request.preset.empty())
      check_field(config_text(requested_config(request, tok_->vocab_size())) ==
                      config_text(model_->config),
                  request.config_path.empty() ? "preset" : "config", ": ", dir_,
                  " holds a run of another model config (leave it out, or start a new run "
                  "directory)");
  } else {
    settings_ = want;
    validate(settings_);
    check(!request.config_path.empty() || !request.preset.empty(),
          "a new run needs a model: a config.json or a preset name");
    if (writer_)
      check(!fs::exists(dir_, ec) || (fs::is_directory(dir_, ec) && fs::is_empty(dir_, ec)), dir_,
            " already exists and is not empty; resume it or choose a new run directory");
    tok_ = make_tokenizer(settings_.tokenizer);
    const Config c = requested_config(request, tok_->vocab_size());
    check_vocabulary(c, *tok_);
    check_seq_fits(settings_, c);
    model_ = std::make_unique<Model>(c);
    init_parameters(*model_, settings_.train.seed);
  }
  check_seq_fits(settings_, model_->config);
  train_data_ = TokenData::open(settings_.data, *tok_, cache_dir);
  if (!settings_.val.empty()) val_data_ = TokenData::open(settings_.val, *tok_, cache_dir);
  trainer_ = std::make_unique<Trainer>(*model_, *train_data_, val_data_.get(), settings_.train,
                                       settings_to_json(settings_), dir_, request.comm);
  if (request.resume) {
    trainer_->resume(*state, meta, state_path);
    state.reset();
    // Store at once what this resume changed (e.g. more steps), so that a later plain resume
    // continues the extended run even if this one dies before its next checkpoint.
    if (writer_ && settings_to_json(settings_) != meta.options) trainer_->save();
  } else if (writer_) {
    // The directory appears complete and resumable from step 0, already locked.
    StagedDirectory staged(dir_);
    lock_ = std::make_unique<DirLock>(staged.path());
    tok_->save(staged.path());
    write_model_files(staged.path(), *model_);
    trainer_->save_to(staged.path());
    staged.commit();
  }
  if (!writer_) return;
  metrics_ = std::make_unique<MetricsLog>(dir_, request.resume ? trainer_->step() : -1);
  // Attention monitoring looks at one fixed window (of the validation data when given).
  if (settings_.attn_stats_every > 0) {
    const int64_t T = std::min<int64_t>(settings_.train.seq, 256);
    probe_.resize(static_cast<size_t>(T + 1));
    (val_data_ ? *val_data_ : *train_data_).even_window(0, 1, T, probe_.data());
    probe_.pop_back();
  }
}

TrainRun::~TrainRun() = default;

uint64_t TrainRun::fingerprint() const {
  const std::string text = settings_to_json(settings_).dump() + config_text(model_->config);
  uint64_t h = dist::fnv1a(text.data(), text.size());
  for (const TokenData* d : {train_data_.get(), val_data_.get()})
    if (d) h = dist::fnv1a(d->data(), static_cast<size_t>(d->size()) * sizeof(uint32_t), h);
  const int64_t s = step();
  h = dist::fnv1a(&s, sizeof s, h);
  return h ^ dist::checksum(model_->params.data(), model_->layout.total);
}

bool TrainRun::train(const RunObserver& obs, const std::atomic<bool>* stop) {
  TrainObserver t;
  if (!writer_) return trainer_->run(t, stop);  // rank 0 records and reports
  t.on_step = [&](const StepRecord& r) {
    metrics_->write(r);
    if (settings_.attn_stats_every > 0 && r.step % settings_.attn_stats_every == 0)
      metrics_->write(measure_attention(*model_, probe_, r.step));
    if (obs.on_step) obs.on_step(r);
  };
  t.on_eval = [&](const EvalRecord& r) {
    metrics_->write(r);
    if (obs.on_eval) obs.on_eval(r);
  };
  return trainer_->run(t, stop);
}

}  // namespace difftx
