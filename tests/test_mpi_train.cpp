// `mpirun -np 2 difftx train` against one process (SPEC section 3, data-parallel training):
// equal losses and weights, resume with another number of ranks, one error line from rank 0
// for a batch that does not divide or ranks that disagree, and a killed rank ending the job.
// Registered only when difftx was built with MPI and mpirun exists (tests/CMakeLists.txt).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <thread>

#include "cli_util.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "train/metrics.h"
#include "train/train_state.h"

namespace {
using namespace cli_test;

const std::string kMpirun = DIFFTX_MPIRUN;

std::string make_corpus(size_t words, unsigned seed) {
  static const char* kWords[] = {"the", "union", "state", "of", "congress", "people", "nation",
                                 "war", "peace", "law", "year", "great", "free", "trade"};
  std::string s;
  unsigned x = seed;
  for (size_t i = 0; i < words; ++i) {
    x = x * 1103515245u + 12345u;
    s += kWords[(x >> 16) % 14];
    s += (i % 13 == 12) ? ".\n" : " ";
  }
  return s;
}

std::string quoted(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += " '" + a + "'";
  return s;
}

std::vector<difftx::StepRecord> steps_of(const fs::path& dir) {
  return difftx::read_metrics_jsonl(dir.string()).steps;
}

std::vector<float> params_of(const fs::path& dir) {
  const auto f = difftx::SafetensorsFile::read((dir / "train_state.safetensors").string());
  const difftx::StTensor* t = f.find("params");
  if (!t) throw std::runtime_error("test: no params in " + dir.string());
  std::vector<float> v(t->numel());
  f.to_float(*t, v.data());
  return v;
}

size_t error_lines(const std::string& err) {
  size_t n = 0;
  for (const auto& l : lines_of(err)) n += l.rfind(kErrorPrefix, 0) == 0;
  return n;
}

class MpiTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("difftx_mpi_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    write_text(root_ / "train.txt", make_corpus(12000, 1));
    write_text(root_ / "val.txt", make_corpus(2000, 2));
  }
  void TearDown() override { fs::remove_all(root_); }

  std::vector<std::string> args(const std::string& out, int steps, int batch = 4) const {
    return {"train", "--data", (root_ / "train.txt").string(), "--val", (root_ / "val.txt").string(),
            "--out", (root_ / out).string(), "--preset", "tiny-diff", "--tokenizer", "byte",
            "--steps", std::to_string(steps), "--batch", std::to_string(batch), "--seq", "32",
            "--lr", "3e-3", "--save-every", "4", "--eval-every", "4", "--eval-windows", "2",
            "--seed", "7", "--cache-dir", (root_ / "cache").string(), "--threads", "1"};
  }
  // mpirun's own command line: local ranks, as root in CI containers, more ranks than cores.
  static std::string mpirun(int np) {
    return "timeout 120 '" + kMpirun + "' --allow-run-as-root --oversubscribe --bind-to none -np " +
           std::to_string(np);
  }
  // Runs a shell command; stdout and stderr captured.
  RunResult shell(const std::string& cmd) const {
    RunResult r;
    r.command = cmd;
    const fs::path out = root_ / "out.txt", err = root_ / "err.txt";
    const int ws = std::system((cmd + " >'" + out.string() + "' 2>'" + err.string() + "'").c_str());
    r.exited = WIFEXITED(ws);
    if (r.exited) r.status = WEXITSTATUS(ws);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }
  RunResult ranks(int np, const std::vector<std::string>& a) const {
    return shell(mpirun(np) + " '" + kBinary.string() + "'" + quoted(a));
  }
  RunResult single(const std::vector<std::string>& a) const {
    return shell("'" + kBinary.string() + "'" + quoted(a));
  }
  fs::path root_;
};

void expect_same_losses(const std::vector<difftx::StepRecord>& a,
                        const std::vector<difftx::StepRecord>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].step, b[i].step);
    EXPECT_NEAR(a[i].loss, b[i].loss, 1e-6 * std::abs(a[i].loss)) << "step " << a[i].step;
    EXPECT_NEAR(a[i].grad_norm, b[i].grad_norm, 1e-5 * std::abs(a[i].grad_norm)) << "step " << a[i].step;
  }
}

// Largest |a - b| over the weights, relative to the largest |a|.
double relative_weight_gap(const std::vector<float>& a, const std::vector<float>& b) {
  double gap = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    gap = std::max(gap, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(a[i])));
  }
  return gap / scale;
}

TEST_F(MpiTrain, TwoRanksEqualOneProcess) {
  const RunResult one = single(args("one", 8));
  ASSERT_EQ(one.status, 0) << report(one);
  const RunResult two = ranks(2, args("two", 8));
  ASSERT_EQ(two.status, 0) << report(two);
  EXPECT_NE(two.err.find("2 ranks x 1 threads"), std::string::npos) << two.err;
  expect_same_losses(steps_of(root_ / "one"), steps_of(root_ / "two"));
  const auto a = params_of(root_ / "one"), b = params_of(root_ / "two");
  ASSERT_EQ(a.size(), b.size());
  const double gap = relative_weight_gap(a, b);
  EXPECT_LT(gap, 1e-5);
  // Not bit-identical: each rank sums its half of the batch's weight gradients before the
  // all-reduce adds the halves, a different order of float additions than one process's.
  std::printf("2 ranks vs 1 process after 8 steps: largest weight gap %.3g (relative), %s\n", gap,
              a == b ? "bit-identical" : "not bit-identical");
  // Rank 0 alone wrote the validation losses (once per evaluation, not once per rank).
  EXPECT_EQ(difftx::read_metrics_jsonl((root_ / "two").string()).evals.size(), 2u);
}

// The checkpoint holds the whole state and the data position is the step alone (the windows
// of step s depend only on seed and s, split by rows over however many ranks there are), so a
// run may continue on another number of ranks.
TEST_F(MpiTrain, ResumeWithOtherRankCounts) {
  auto resume = [&](const std::string& out) {
    return std::vector<std::string>{"train", "--out", (root_ / out).string(), "--resume", "--steps", "8",
                                    "--threads", "1", "--cache-dir", (root_ / "cache").string()};
  };
  // The reference: one process to step 4, resumed by one process to 8 (an extended run's
  // schedule differs from one planned for 8 steps).
  ASSERT_EQ(single(args("ref", 4)).status, 0);
  ASSERT_EQ(single(resume("ref")).status, 0);
  // 2 ranks to step 4, one process to 8; and one process to 4, 2 ranks to 8.
  ASSERT_EQ(ranks(2, args("a", 4)).status, 0);
  const RunResult a = single(resume("a"));
  ASSERT_EQ(a.status, 0) << report(a);
  ASSERT_EQ(single(args("b", 4)).status, 0);
  const RunResult b = ranks(2, resume("b"));
  ASSERT_EQ(b.status, 0) << report(b);
  expect_same_losses(steps_of(root_ / "ref"), steps_of(root_ / "a"));
  expect_same_losses(steps_of(root_ / "ref"), steps_of(root_ / "b"));
  EXPECT_LT(relative_weight_gap(params_of(root_ / "ref"), params_of(root_ / "a")), 1e-5);
  EXPECT_LT(relative_weight_gap(params_of(root_ / "ref"), params_of(root_ / "b")), 1e-5);
}

TEST_F(MpiTrain, BatchThatDoesNotDivideIsOneErrorFromRankZero) {
  const RunResult r = ranks(2, args("odd", 4, 3));
  EXPECT_EQ(r.status, 2) << report(r);
  EXPECT_EQ(error_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("--batch"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(root_ / "odd"));
}

TEST_F(MpiTrain, RanksThatDisagreeStopBeforeWriting) {
  auto other = args("mixed", 4);
  other[other.size() - 5] = "8";  // --seed 7 -> 8 on rank 1 only
  ASSERT_EQ(other[other.size() - 6], "--seed");
  const std::string bin = " '" + kBinary.string() + "'";
  const RunResult r = shell(mpirun(1) + bin + quoted(args("mixed", 4)) + " : -np 1" + bin + quoted(other));
  EXPECT_EQ(r.status, 2) << report(r);
  EXPECT_EQ(error_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("rank 1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(root_ / "mixed"));

  // The same flags naming other data on rank 1 (a relative --data from another working
  // directory): found by the fingerprint of settings and data after loading, exit 2 everywhere.
  fs::create_directories(root_ / "other");
  write_text(root_ / "other" / "train.txt", make_corpus(12000, 3));
  write_text(root_ / "other" / "val.txt", make_corpus(2000, 2));
  auto rel = args("data", 4);
  rel[2] = "train.txt";
  rel[4] = "val.txt";
  const std::string rank0 = " -wdir '" + root_.string() + "'" + bin + quoted(rel);
  const std::string rank1 = " -wdir '" + (root_ / "other").string() + "'" + bin + quoted(rel);
  const RunResult d = shell(mpirun(1) + rank0 + " : -np 1" + rank1);
  EXPECT_EQ(d.status, 2) << report(d);
  EXPECT_EQ(error_lines(d.err), 1u) << d.err;
  EXPECT_NE(d.err.find("disagrees with rank 0 on the options, data"), std::string::npos) << d.err;
}

// Rank 1 killed mid-run: mpirun ends the whole job (no rank left waiting in a collective), and
// the run resumes from its last checkpoint.
TEST_F(MpiTrain, KilledRankEndsTheJobAndTheRunResumes) {
  auto a = args("killed", 100000);
  a.insert(a.end(), {"--warmup", "2"});  // resumable with fewer steps than the 100000 planned
  const std::string cmd = mpirun(2) + " '" + kBinary.string() + "'" + quoted(a) + " >'" +
                          (root_ / "k.out").string() + "' 2>'" + (root_ / "k.err").string() + "'";
  const pid_t job = ::fork();
  ASSERT_GE(job, 0);
  if (job == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait for a checkpoint beyond step 0, then SIGKILL the rank-1 process.
  bool checkpointed = false;
  for (int i = 0; i < 3000 && !checkpointed; ++i) {
    try {
      const auto s = fs::exists(root_ / "killed" / "metrics.jsonl") ? steps_of(root_ / "killed")
                                                                     : std::vector<difftx::StepRecord>{};
      checkpointed = s.size() >= 9;
    } catch (const difftx::Error&) {  // read in the middle of a line
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(checkpointed);
  pid_t rank1 = -1;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string env;
    try {
      env = read_text(e.path() / "environ");
    } catch (const std::exception&) {
      continue;
    }
    const std::string cmdline = [&] { try { return read_text(e.path() / "cmdline"); } catch (...) { return std::string(); } }();
    if (cmdline.find(kBinary.string()) == 0 &&
        cmdline.find((root_ / "killed").string()) != std::string::npos &&
        env.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') != std::string::npos)
      rank1 = std::stoi(name);
  }
  ASSERT_GT(rank1, 0) << "rank 1 not found";
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  int ws = 0;
  ASSERT_EQ(::waitpid(job, &ws, 0), job);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 30) << "the job hung after a rank died";
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) != 0 && WEXITSTATUS(ws) != 124)
      << read_text(root_ / "k.err");

  // The last checkpoint is a whole one; the run continues from it for 4 more steps.
  const auto state = difftx::SafetensorsFile::read((root_ / "killed" / "train_state.safetensors").string());
  const int64_t saved = difftx::parse_train_state_meta(state.metadata().at(difftx::kTrainStateKey), "state").step;
  EXPECT_GE(saved, 4);
  const RunResult r = single({"train", "--out", (root_ / "killed").string(), "--resume", "--steps",
                              std::to_string(saved + 4), "--threads", "1", "--cache-dir",
                              (root_ / "cache").string()});
  ASSERT_EQ(r.status, 0) << report(r);
  const auto s = steps_of(root_ / "killed");
  ASSERT_EQ(s.size(), static_cast<size_t>(saved + 4));
  EXPECT_EQ(s.back().step, saved + 4);
}

}  // namespace
