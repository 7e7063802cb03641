// Hostile inputs and faults, end to end (issues 16 and 18): the real difftx program against
// damaged token caches, absurd sizes, FIFOs and devices where files are expected or written,
// a full disk on stdout, debris of killed runs, a model that could sample ids its tokenizer
// cannot print, and bench with small and odd --seq / --decode-tokens. Every bad case must end
// with exit status 2 and one error line, never a signal (a hang is killed by the timeout and
// so fails as a signal), and leave the files it was given unchanged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace cli_test;

namespace {

constexpr unsigned kTimeout = 30;  // seconds; far more than any case here needs
// One OpenMP thread: on a loaded machine, spinning threads make tiny models crawl (a 48-token
// generate took 16 s at 2 threads against 0.02 s at 1), and these tests time nothing.
const std::string kOneThread = "OMP_NUM_THREADS=1";
// An address-space limit for cases that must be refused before any large allocation: were the
// layout or a cache allocated first, the run would fail differently. Every such case is also
// beyond the machine's memory, so under the sanitizers (whose shadow memory needs a huge
// address space; scripts/test-asan.sh sets DIFFTX_SANITIZER_BUILD) no limit is set.
uint64_t small_address_space() { return std::getenv("DIFFTX_SANITIZER_BUILD") ? 0 : uint64_t{2} << 30; }
// A tiny model for the byte tokenizer (257 ids).
json tiny_config() {
  return {{"model_type", "diffllama"}, {"vocab_size", 257},        {"hidden_size", 32},
          {"intermediate_size", 48},   {"num_hidden_layers", 2},   {"num_attention_heads", 4},
          {"max_position_embeddings", 64}};
}

bool names_fifo(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

// Runs difftx with stdin and stdout redirected to the given paths ("" keeps stdout in a log
// file), stderr captured; killed by SIGALRM after timeout_s.
RunResult run_redirected(const std::vector<std::string>& args, const fs::path& log_dir,
                         const std::string& stdin_path, const std::string& stdout_path,
                         const std::vector<std::string>& env = {}) {
  RunResult r;
  r.command = kBinary.string();
  for (const auto& a : args) r.command += " '" + a + "'";
  if (!stdin_path.empty()) r.command += " < " + stdin_path;
  if (!stdout_path.empty()) r.command += " > " + stdout_path;
  const fs::path out_log = log_dir / "stdout.txt", err_log = log_dir / "stderr.txt";
  std::vector<std::string> argv_s{kBinary.string()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string out = stdout_path.empty() ? out_log.string() : stdout_path;
    const int fo = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = ::open(err_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fi = stdin_path.empty() ? ::open("/dev/null", O_RDONLY) : ::open(stdin_path.c_str(), O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0) ::_exit(126);
    ::dup2(fi, 0);
    ::dup2(fo, 1);
    ::dup2(fe, 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    ::putenv(const_cast<char*>(kOneThread.c_str()));
    ::alarm(kTimeout);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("test: waitpid failed");
  r.exited = WIFEXITED(ws);
  if (r.exited) r.status = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) r.signal = WTERMSIG(ws);
  if (stdout_path.empty()) r.out = read_text(out_log);
  r.err = read_text(err_log);
  return r;
}

// Shared fixture: one small trained model (with its byte tokenizer) and a text, made once.
class Hostile : public ::testing::Test {
 protected:
  static fs::path shared_;
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "difftx_hostile_XXXXXX").string();
    shared_ = ::mkdtemp(tmpl.data());
    std::string text;
    for (int i = 0; i < 40; ++i) text += "The quick brown fox " + std::to_string(i) + " jumps over the lazy dog.\n";
    write_text(shared_ / "text.txt", text);
    write_text(shared_ / "config.json", tiny_config().dump());
    const RunResult r = run_difftx({"train", "--config", (shared_ / "config.json").string(), "--data",
                                    (shared_ / "text.txt").string(), "--out", (shared_ / "model").string(),
                                    "--steps", "2", "--batch", "2", "--seq", "16", "--cache-dir",
                                    (shared_ / "cache0").string()},
                                   shared_, 0, 300);
    ASSERT_EQ(r.status, 0) << report(r);
    // A model whose vocabulary (300) is larger than its byte tokenizer's (257): the extra ids
    // exist in the model but cannot be printed. train refuses to make one, so it is made by
    // init and given the trained model's tokenizer.
    json wide = tiny_config();
    wide["vocab_size"] = 300;
    write_text(shared_ / "wide.json", wide.dump());
    const RunResult w = run_difftx({"init", "--config", (shared_ / "wide.json").string(), "--out",
                                    (shared_ / "wide").string()},
                                   shared_);
    ASSERT_EQ(w.status, 0) << report(w);
    fs::copy_file(shared_ / "model" / "difftx_tokenizer.json", shared_ / "wide" / "difftx_tokenizer.json");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(shared_, ec);
  }
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "difftx_hostile_case_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    logs_ = dir_ / "logs";
    fs::create_directory(logs_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string model() const { return (shared_ / "model").string(); }
  std::string wide_model() const { return (shared_ / "wide").string(); }
  std::string text() const { return (shared_ / "text.txt").string(); }
  RunResult run(const std::vector<std::string>& args, uint64_t address_space = 0) {
    return run_difftx(args, logs_, address_space, kTimeout, {"DIFFTX_CACHE=" + (dir_ / "cache").string(), kOneThread});
  }
  // No *.tmp.* left anywhere under dir_ (logs aside).
  void expect_no_temporaries() {
    for (const auto& e : fs::recursive_directory_iterator(dir_))
      EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << "left behind: " << e.path();
  }
  fs::path dir_, logs_;
};
fs::path Hostile::shared_;

// ------------------------------------------------------------------------------ token caches

fs::path only_cache_file(const fs::path& cache_dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(cache_dir)) files.push_back(e.path());
  if (files.size() != 1) throw std::runtime_error("test: expected one token cache");
  return files[0];
}

// eval on a damaged cache gives exactly the result of a clean cache (the cache is rebuilt,
// with a warning) and never dies of a signal.
TEST_F(Hostile, DamagedTokenCachesAreRebuiltNeverTrusted) {
  const std::vector<std::string> eval{"eval", "--model", model(), "--data", text(), "--seq", "16",
                                      "--cache-dir", (dir_ / "cache").string()};
  const RunResult clean = run(eval);
  ASSERT_EQ(clean.status, 0) << report(clean);
  const fs::path cache = only_cache_file(dir_ / "cache");
  const auto good = read_bytes(cache);
  const uint64_t hlen = [&] { uint64_t n = 0; for (int i = 7; i >= 0; --i) n = (n << 8) | good[8 + i]; return n; }();
  const std::string header(good.begin() + 16, good.begin() + 16 + static_cast<long>(hlen));
  const size_t start = (16 + hlen + 63) / 64 * 64;  // where the ids begin
  auto with_count = [&](const std::string& count) {  // the header rewritten, the ids kept
    std::string h = header;
    const size_t at = h.find("\"tokens\":");
    h.replace(at, h.find_first_of(",}", at) - at, "\"tokens\":" + count);
    std::vector<uint8_t> b(good.begin(), good.begin() + 8);
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(h.size() >> (8 * i)));
    for (char ch : h) b.push_back(static_cast<uint8_t>(ch));
    b.resize((16 + h.size() + 63) / 64 * 64, 0);
    b.insert(b.end(), good.begin() + static_cast<long>(start), good.end());
    return b;
  };
  struct Damage {
    std::string name;
    std::vector<uint8_t> bytes;
  };
  std::vector<Damage> cases;
  auto flip = good;
  flip[flip.size() - 1] ^= 0x80;  // last id negative as int32
  cases.push_back({"flipped top bit of an id", flip});
  flip = good;
  flip[flip.size() - 39] ^= 0x10;  // an id + 4096: beyond the vocabulary, still positive
  cases.push_back({"id beyond the vocabulary", flip});
  const uint64_t n = (good.size() - start) / 4;
  cases.push_back({"enlarged count", with_count(std::to_string(n + 1000))});
  cases.push_back({"count that wraps x4", with_count(std::to_string((uint64_t{1} << 62) + n))});
  cases.push_back({"truncated", std::vector<uint8_t>(good.begin(), good.end() - 37)});
  cases.push_back({"header only", std::vector<uint8_t>(good.begin(), good.begin() + 16 + static_cast<long>(hlen))});
  auto bad_len = good;
  for (int i = 8; i < 16; ++i) bad_len[static_cast<size_t>(i)] = 0xff;
  cases.push_back({"header length 2^64-1", bad_len});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_FALSE(c.bytes.empty());
    write_bytes(cache, c.bytes);
    const RunResult r = run(eval);
    EXPECT_EQ(r.signal, 0) << report(r);
    EXPECT_EQ(r.status, 0) << report(r);
    EXPECT_EQ(r.out, clean.out);
    EXPECT_NE(r.err.find("rebuilt it"), std::string::npos) << r.err;
    EXPECT_EQ(read_bytes(cache), good) << "the cache must be rebuilt as it was";
  }
  // A cache path that is a FIFO: refused, naming the path, without hanging.
  fs::remove(cache);
  ASSERT_EQ(::mkfifo(cache.c_str(), 0644), 0);
  const RunResult r = run(eval);
  expect_error_line(r, cache.string());
  EXPECT_TRUE(names_fifo(cache));
}

// train on a damaged cache: rebuilt too (the bug was an out-of-bounds read and SIGSEGV).
TEST_F(Hostile, TrainOnADamagedCacheRebuildsIt) {
  const std::string cache = (dir_ / "cache").string();
  const std::vector<std::string> train{"train", "--config", (shared_ / "config.json").string(), "--data", text(),
                                       "--steps", "1", "--batch", "1", "--seq", "8", "--cache-dir", cache};
  auto with_out = [&](const std::string& out) {
    auto a = train;
    a.push_back("--out");
    a.push_back((dir_ / out).string());
    return a;
  };
  const RunResult first = run(with_out("a"));
  ASSERT_EQ(first.status, 0) << report(first);
  const fs::path file = only_cache_file(dir_ / "cache");
  auto b = read_bytes(file);
  b.resize(b.size() / 2 + 1);  // truncated mid-id
  write_bytes(file, b);
  const RunResult second = run(with_out("b"));
  EXPECT_EQ(second.signal, 0) << report(second);
  EXPECT_EQ(second.status, 0) << report(second);
}

// ------------------------------------------------------------------------------ sizes

TEST_F(Hostile, AbsurdConfigSizesAreRefusedBeforeAllocating) {
  struct Case {
    std::string name, key;
    json value;
    std::string needle;
  };
  const std::vector<Case> cases{
      {"hundreds of millions of layers", "num_hidden_layers", 300000000, "300000000 layers"},
      {"huge vocab", "vocab_size", 2000000000, "GiB"},
      {"huge hidden", "hidden_size", 2147483646, "GiB"},
      {"huge intermediate", "intermediate_size", 2147483647, "GiB"},
      {"lambda_std_dev 1e308", "lambda_std_dev", 1e308, "lambda_std_dev"},
      {"lambda_std_dev 50", "lambda_std_dev", 50.0, "lambda_std_dev"},
      {"rms_norm_eps 1e308", "rms_norm_eps", 1e308, "rms_norm_eps"},
      {"rope_theta 1e-300", "rope_theta", 1e-300, "rope_theta"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json cfg = tiny_config();
    cfg[c.key] = c.value;
    if (c.key == "hidden_size") cfg["head_dim"] = 8;
    const fs::path path = dir_ / "config.json";
    write_text(path, cfg.dump());
    const auto t0 = std::chrono::steady_clock::now();
    // 2 GiB of address space: enough for difftx, far too little for a layout built first.
    RunResult r = run({"init", "--config", path.string(), "--out", (dir_ / "m").string()}, small_address_space());
    expect_error_line(r, c.needle);
    EXPECT_FALSE(fs::exists(dir_ / "m"));
    r = run({"bench", "--config", path.string(), "--seq", "4", "--batch", "1", "--steps", "1", "--json"},
            small_address_space());
    expect_error_line(r, c.needle);
    EXPECT_TRUE(r.out.empty());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  }
  // A model directory whose config.json claims a huge size: generate and eval refuse it too.
  fs::copy(model(), dir_ / "big", fs::copy_options::recursive);
  json cfg = json::parse(read_text(dir_ / "big" / "config.json"));
  cfg["num_hidden_layers"] = 300000000;
  write_text(dir_ / "big" / "config.json", cfg.dump());
  expect_error_line(run({"generate", "--model", (dir_ / "big").string(), "--prompt", "hi"}, small_address_space()),
                    "300000000 layers");
  expect_error_line(run({"eval", "--model", (dir_ / "big").string(), "--data", text()}, small_address_space()),
                    "300000000 layers");
}

TEST_F(Hostile, HugeRunSizesAreRefusedBeforeAllocating) {
  // A training step of 4096 x 2048 tokens with an 8192-word vocabulary: ~0.5 TB of logits.
  const std::string cfg = (fs::path(DIFFTX_SOURCE_DIR) / "configs" / "small-llama.json").string();
  expect_error_line(run({"bench", "--config", cfg, "--seq", "2048", "--batch", "4096", "--steps", "1"},
                        small_address_space()),
                    "training step");
  // A KV cache of 16 million tokens for 200 layers (800 GiB): refused with the figure before
  // allocation.
  json c = tiny_config();
  c["num_hidden_layers"] = 200;
  c["max_position_embeddings"] = 2147483647;
  write_text(dir_ / "long.json", c.dump());
  const RunResult made = run({"init", "--config", (dir_ / "long.json").string(), "--out", (dir_ / "long").string()});
  ASSERT_EQ(made.status, 0) << report(made);
  fs::copy_file(fs::path(model()) / "difftx_tokenizer.json", dir_ / "long" / "difftx_tokenizer.json");
  expect_error_line(run({"generate", "--model", (dir_ / "long").string(), "--prompt", "hi", "--max-tokens",
                         "16000000"},
                        small_address_space()),
                    "KV cache");
}

// ------------------------------------------------------------------------------ special files

TEST_F(Hostile, FifoAndDeviceInputsAreRefusedWithoutHanging) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string f = fifo.string();
  const std::vector<std::vector<std::string>> cases{
      {"generate", "--model", model(), "--prompt-file", f},
      {"init", "--config", f, "--out", (dir_ / "m").string()},
      {"bench", "--config", f},
      {"tokenizer", "encode", "--tokenizer", "byte", "--file", f},
      {"tokenizer", "encode", "--tokenizer", "spm:" + f, "--text", "hi"},
      {"tokenizer", "encode", "--tokenizer", "byte", "--file", "/dev/zero"},
      {"init", "--config", "/dev/zero", "--out", (dir_ / "m").string()},
      {"init", "--config", dir_.string(), "--out", (dir_ / "m").string()},
      {"eval", "--model", model(), "--data", f},
      {"plot", fifo.string(), "--out", (dir_ / "p.png").string()},
  };
  for (const auto& args : cases) {
    const RunResult r = run(args);
    expect_error_line(r);
    EXPECT_TRUE(names_fifo(fifo));
    EXPECT_FALSE(fs::exists(dir_ / "m"));
  }
  // A model directory whose config.json or tokenizer descriptor is a FIFO.
  for (const char* name : {"config.json", "difftx_tokenizer.json", "model.safetensors"}) {
    SCOPED_TRACE(name);
    const fs::path m = dir_ / ("model_" + std::string(name));
    fs::copy(model(), m, fs::copy_options::recursive);
    fs::remove(m / name);
    ASSERT_EQ(::mkfifo((m / name).c_str(), 0644), 0);
    expect_error_line(run({"generate", "--model", m.string(), "--prompt", "hi", "--max-tokens", "2"}));
  }
}

TEST_F(Hostile, StdinIsReadWhereAskedFor) {
  write_text(dir_ / "prompts.txt", "first\nsecond\n");
  const RunResult r = run_redirected({"generate", "--model", model(), "--prompt-file", "-", "--max-tokens", "2",
                                      "--temperature", "0"},
                                     logs_, (dir_ / "prompts.txt").string(), "");
  ASSERT_EQ(r.status, 0) << report(r);
  EXPECT_EQ(lines_of(r.out).size(), 2u) << r.out;
  const RunResult e = run_redirected({"tokenizer", "encode", "--tokenizer", "byte", "--file", "-"}, logs_,
                                     (dir_ / "prompts.txt").string(), "");
  ASSERT_EQ(e.status, 0) << report(e);
  EXPECT_EQ(e.out, "102,105,114,115,116,10,115,101,99,111,110,100,10\n");
}

TEST_F(Hostile, OutputsNeverReplaceFifosOrDevices) {
  const fs::path fifo = dir_ / "out";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  // A symbolic link to a device: were it followed into a rename, only the link would go, so
  // the test itself can never damage /dev/null.
  const fs::path dev = dir_ / "devnull";
  fs::create_symlink("/dev/null", dev);
  for (const fs::path& target : {fifo, dev}) {
    SCOPED_TRACE(target.string());
    const std::string t = target.string();
    const std::vector<std::vector<std::string>> cases{
        {"inspect", "--model", model(), "--tokens", "1,2,3", "--out", t},
        {"plot", model(), "--out", t},
        {"init", "--config", (shared_ / "config.json").string(), "--out", t},
        {"attention", "--model", model(), "--text", "hello", "--out", t},
        {"tokenizer", "train", "--data", text(), "--vocab-size", "300", "--out", t},
        {"train", "--config", (shared_ / "config.json").string(), "--data", text(), "--out", t, "--steps", "1",
         "--batch", "1", "--seq", "8"},
    };
    for (const auto& args : cases) {
      const RunResult r = run(args);
      expect_error_line(r, t);
      EXPECT_TRUE(names_fifo(fifo));
      EXPECT_TRUE(fs::is_symlink(dev));
    }
  }
  expect_no_temporaries();
}

TEST_F(Hostile, ResultsLostOnAFullDiskAreErrors) {
  const std::vector<std::vector<std::string>> cases{
      {"eval", "--model", model(), "--data", text(), "--seq", "16"},
      {"bench", "--config", (shared_ / "config.json").string(), "--seq", "8", "--batch", "1", "--steps", "1",
       "--json"},
      {"tokenizer", "encode", "--tokenizer", "byte", "--text", "hello"},
      {"tokenizer", "decode", "--tokenizer", "byte", "--ids", "104,105"},
      {"tokenizer", "info", "--tokenizer", "byte"},
      {"generate", "--model", model(), "--prompt", "hi", "--max-tokens", "3"},
      {"generate", "--model", model(), "--prompt", "hi", "--max-tokens", "3", "--ids"},
  };
  write_text(dir_ / "prompts.txt", "a\nb\n");
  auto batch = std::vector<std::string>{"generate", "--model", model(), "--prompt-file",
                                        (dir_ / "prompts.txt").string(), "--max-tokens", "2"};
  auto all = cases;
  all.push_back(batch);
  for (const auto& args : all) {
    const RunResult r = run_redirected(args, logs_, "", "/dev/full", {"DIFFTX_CACHE=" + (dir_ / "cache").string()});
    expect_error_line(r, "standard output");
  }
}

// ------------------------------------------------------------------------------ debris

// Starts `args` with DIFFTX_PAUSE_WRITE=<pause_at>, waits until the paused temporary file
// exists (the writer is mid-save), then sends `sig`; returns how the process ended.
RunResult kill_mid_save(const std::vector<std::string>& args, const fs::path& logs, const fs::path& watch_dir,
                        const std::string& pause_at, int sig, const std::string& cache) {
  Child c = spawn_difftx(args, logs, {"DIFFTX_PAUSE_WRITE=" + pause_at, "DIFFTX_CACHE=" + cache, kOneThread}, 0, kTimeout);
  const std::string tmp_suffix = ".tmp." + std::to_string(c.pid);
  bool paused = false;
  for (int i = 0; i < 3000 && !paused; ++i) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(watch_dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.find(pause_at) == 0 && name.size() > tmp_suffix.size() &&
          name.compare(name.size() - tmp_suffix.size(), tmp_suffix.size(), tmp_suffix) == 0)
        paused = true;
    }
    if (!paused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(paused) << "the writer never reached " << pause_at;
  ::kill(c.pid, sig);
  return wait_difftx(c);
}

TEST_F(Hostile, KilledSavesLeaveDebrisThatTheNextRunRemoves) {
  const std::string cfg = (shared_ / "config.json").string(), out = (dir_ / "m").string();
  const std::string cache = (dir_ / "cache").string();
  // SIGKILL mid-save of init: the staging folder stays (nothing can run on SIGKILL) ...
  RunResult r = kill_mid_save({"init", "--config", cfg, "--out", out}, logs_, dir_, "model.safetensors", SIGKILL, cache);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_FALSE(fs::exists(out));
  bool debris = false;
  for (const auto& e : fs::directory_iterator(dir_)) debris |= e.path().filename().string().rfind("m.tmp.", 0) == 0;
  EXPECT_TRUE(debris) << "expected a staging folder of the killed run";
  // ... and the next writer of the same target removes it.
  r = run({"init", "--config", cfg, "--out", out});
  ASSERT_EQ(r.status, 0) << report(r);
  expect_no_temporaries();

  // The same for a file: plot killed while writing its PNG, then plotted again.
  const std::string png = (dir_ / "loss.png").string();
  r = kill_mid_save({"plot", model(), "--out", png}, logs_, dir_, "loss.png", SIGKILL, cache);
  EXPECT_EQ(r.signal, SIGKILL);
  r = run({"plot", model(), "--out", png});
  ASSERT_EQ(r.status, 0) << report(r);
  expect_no_temporaries();
}

TEST_F(Hostile, SigtermAndSigintRemoveTheirOwnTemporaries) {
  const std::string cfg = (shared_ / "config.json").string(), cache = (dir_ / "cache").string();
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(strsignal(sig));
    const std::string out = (dir_ / ("m" + std::to_string(sig))).string();
    RunResult r = kill_mid_save({"init", "--config", cfg, "--out", out}, logs_, dir_, "model.safetensors", sig, cache);
    EXPECT_EQ(r.signal, sig) << report(r);
    EXPECT_FALSE(fs::exists(out));
    r = kill_mid_save({"attention", "--model", model(), "--text", "hello there", "--out", out + "_attn"}, logs_, dir_,
                      "stats.json", sig, cache);
    EXPECT_EQ(r.signal, sig) << report(r);
    EXPECT_FALSE(fs::exists(out + "_attn"));
    r = kill_mid_save({"plot", model(), "--out", out + ".png"}, logs_, dir_, "m", sig, cache);
    EXPECT_EQ(r.signal, sig) << report(r);
    expect_no_temporaries();
  }
}

// ------------------------------------------------------------------------------ sampling

TEST_F(Hostile, GenerateNeverSamplesIdsTheTokenizerCannotPrint) {
  for (const char* seed : {"1", "2", "3"}) {
    const RunResult r = run({"generate", "--model", wide_model(), "--prompt", "The quick", "--max-tokens", "48",
                             "--temperature", "20", "--seed", seed, "--ids"});
    ASSERT_EQ(r.status, 0) << report(r);
    std::string ids = r.out;
    for (char& ch : ids)
      if (ch == ',') ch = ' ';
    std::istringstream in(ids);
    int n = 0;
    for (int id; in >> id; ++n) EXPECT_LT(id, 257) << r.out;
    EXPECT_GT(n, 0);
    const RunResult text = run({"generate", "--model", wide_model(), "--prompt", "The quick", "--max-tokens", "48",
                                "--temperature", "20", "--seed", seed});
    EXPECT_EQ(text.status, 0) << report(text);
  }
}

// ------------------------------------------------------------------------------ bench (issue 16)

TEST_F(Hostile, BenchWorksForSmallAndOddSeqAndDecodeTokens) {
  const std::string cfg = (shared_ / "config.json").string();  // max_position_embeddings 64
  struct Case {
    int seq, decode;
  };
  for (const Case c : {Case{1, 0}, Case{1, 63}, Case{2, 5}, Case{3, 1}, Case{16, 32}, Case{33, 7}, Case{64, 32}}) {
    SCOPED_TRACE("--seq " + std::to_string(c.seq) + " --decode-tokens " + std::to_string(c.decode));
    const RunResult r = run({"bench", "--config", cfg, "--seq", std::to_string(c.seq), "--batch", "1", "--steps",
                             "1", "--decode-tokens", std::to_string(c.decode), "--json"});
    ASSERT_EQ(r.status, 0) << report(r);
    const json j = json::parse(r.out);
    const int prompt = std::max(1, c.seq / 2);
    EXPECT_EQ(j.at("decode_context").get<int>(), prompt + c.decode / 2);
    EXPECT_EQ(j.at("decode_tokens_per_s").get<double>() > 0, c.decode > 0);
  }
  for (const Case c : {Case{1, 64}, Case{16, 57}, Case{64, 33}, Case{8, -1}}) {
    SCOPED_TRACE("--seq " + std::to_string(c.seq) + " --decode-tokens " + std::to_string(c.decode));
    const RunResult r = run({"bench", "--config", cfg, "--seq", std::to_string(c.seq), "--batch", "1", "--steps",
                             "1", "--decode-tokens", std::to_string(c.decode), "--json"});
    expect_error_line(r, "--decode-tokens");
    EXPECT_TRUE(r.out.empty());
  }
  for (const char* seq : {"0", "65", "-3"})
    expect_error_line(run({"bench", "--config", cfg, "--seq", seq, "--batch", "1", "--json"}), "--seq");
}

}  // namespace
