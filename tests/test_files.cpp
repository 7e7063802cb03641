// The file rules every command relies on (issue 18): reads refuse what is not a regular file
// without blocking, writes never replace a FIFO, device or directory, the temporaries of dead
// writers are removed by the next writer, SIGINT/SIGTERM remove this process's temporaries,
// and sizes are refused arithmetically before anything is allocated.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/files.h"
#include "core/memory_limit.h"
#include "model/params.h"
#include "test_util.h"

namespace difftx {
namespace {
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A pid that surely belongs to no process: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  return pid;
}

TEST(Files, ReadsRefuseFifosDevicesAndDirectoriesWithoutBlocking) {
  test::TempDir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(error_of([&] { read_file_text(fifo); }).find("FIFO"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(error_of([&] { read_file_bytes(dir.path().string()); }).find("directory"), std::string::npos);
  EXPECT_NE(error_of([&] { read_file_bytes("/dev/zero"); }).find("character device"), std::string::npos);
  EXPECT_NE(error_of([&] { read_file_bytes(dir / "absent"); }).find("not found"), std::string::npos);
  { std::ofstream(dir / "ok") << "fine"; }
  EXPECT_EQ(read_file_text(dir / "ok"), "fine");
  EXPECT_EQ(read_input_text(dir / "ok"), "fine");
}

TEST(Files, WritesNeverReplaceANonRegularFile) {
  test::TempDir dir;
  const std::string fifo = dir / "out.png";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_NE(error_of([&] { write_file_atomic(fifo, "x"); }).find("FIFO"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  fs::create_directory(dir / "folder");
  EXPECT_NE(error_of([&] { write_file_atomic(dir / "folder", "x"); }).find("directory"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(dir / "folder"));
  EXPECT_NE(error_of([&] { write_file_atomic("/dev/null", "x"); }).find("character device"),
            std::string::npos);
  EXPECT_NE(error_of([&] { StagedDirectory s(fifo); }).find("not a directory"), std::string::npos);
  // Nothing else (no temporary) appeared next to them.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) entries += !e.path().empty();
  EXPECT_EQ(entries, 2);
}

TEST(Files, TemporariesOfDeadWritersAreRemovedByTheNextWriter) {
  test::TempDir dir;
  const std::string target = dir / "model.safetensors";
  const std::string dead = target + ".tmp." + std::to_string(dead_pid());
  const std::string alive = target + ".tmp.1";  // init: never ours to remove
  const std::string other = dir / "other.tmp.12345x";
  for (const auto& p : {dead, alive, other}) std::ofstream(p) << "debris";
  write_file_atomic(target, "new");
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_EQ(read_file_text(target), "new");

  // A staging folder of a dead process (with files inside) next to a new --out directory.
  const std::string out = dir / "run";
  const std::string staged_dead = out + ".tmp." + std::to_string(dead_pid());
  fs::create_directories(staged_dead + "/sub");
  std::ofstream(staged_dead + "/sub/big.bin") << std::string(1000, 'x');
  {
    StagedDirectory s(out);
    std::ofstream(s.path() + "/f") << "f";
    s.commit();
  }
  EXPECT_FALSE(fs::exists(staged_dead));
  EXPECT_TRUE(fs::exists(out + "/f"));
}

// In a child: register a staging folder with content, then SIGTERM (or SIGINT) itself. The
// child must die of that signal and leave no staging folder behind.
void expect_signal_cleans(int sig) {
  test::TempDir dir;
  const std::string out = dir / "out";
  const pid_t pid = ::fork();
  if (pid == 0) {
    install_cleanup_on_signals();
    StagedDirectory s(out);
    fs::create_directories(s.path() + "/a/b");
    std::ofstream(s.path() + "/a/b/c.bin") << std::string(5000, 'c');
    for (int i = 0; i < 300; ++i) std::ofstream(s.path() + "/f" + std::to_string(i)) << i;
    const std::string tmp_file = dir / ("x.tmp." + std::to_string(::getpid()));
    std::ofstream(tmp_file) << "x";
    register_temporary(tmp_file);
    ::raise(sig);
    ::_exit(0);  // not reached: the signal ends the process
  }
  int ws = 0;
  ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == sig) << "status " << ws;
  int left = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    ++left;
    ADD_FAILURE() << "left behind: " << e.path();
  }
  EXPECT_EQ(left, 0);
}
TEST(Files, SigtermAndSigintRemoveThisProcesssTemporaries) {
  expect_signal_cleans(SIGTERM);
  expect_signal_cleans(SIGINT);
}

TEST(MemoryLimit, HugeConfigsAreRefusedBeforeTheLayoutIsBuilt) {
  Config c;
  c.vocab_size = 300;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 300000000;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.head_dim = 8;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { make_layout(c); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << "built the layout first?";
  EXPECT_NE(e.find("300000000 layers"), std::string::npos) << e;
  EXPECT_NE(e.find("GiB"), std::string::npos) << e;
  c.num_hidden_layers = 2;
  c.vocab_size = 2000000000;
  c.hidden_size = 2000000000;
  EXPECT_NE(error_of([&] { make_layout(c); }).find("GiB"), std::string::npos);
  EXPECT_NE(error_of([] { check_fits_in_memory(uint128(1) << 80, "this", "less"); }).find("this needs"),
            std::string::npos);
  EXPECT_NO_THROW(check_fits_in_memory(1024, "a little", ""));
  EXPECT_GT(usable_memory_bytes(), uint64_t{1} << 20);
}

}  // namespace
}  // namespace difftx
