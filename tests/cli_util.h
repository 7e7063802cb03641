#pragma once
// Running the real difftx program from tests: files, a fork/exec runner with captured output,
// and the SPEC section 3 error contract.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// Whether this test program (and so the difftx built beside it) runs under AddressSanitizer.
#if defined(__SANITIZE_ADDRESS__)
#define DIFFTX_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DIFFTX_TEST_ASAN 1
#endif
#endif

namespace cli_test {
namespace fs = std::filesystem;

const fs::path kBinary = DIFFTX_BINARY;
constexpr const char* kErrorPrefix = "difftx: error: ";
constexpr const char* kWarningPrefix = "difftx: warning: ";

inline std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("test: cannot read " + p.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline std::string read_text(const fs::path& p) {
  const auto b = read_bytes(p);
  return {b.begin(), b.end()};
}
inline void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) throw std::runtime_error("test: cannot write " + p.string());
}
inline void write_text(const fs::path& p, const std::string& s) {
  write_bytes(p, std::vector<uint8_t>(s.begin(), s.end()));
}

struct RunResult {
  std::string command;
  bool exited = false;  // normal exit (then status is valid)
  int status = -1;
  int signal = 0;  // when killed by a signal
  std::string out, err;
};

// A running difftx process whose stdout and stderr go to files in log_dir.
struct Child {
  pid_t pid = -1;
  std::string command;
  fs::path out_path, err_path;
};

// Starts difftx with args (no shell) and extra environment variables ("NAME=value"). A child
// that runs longer than timeout_s is killed by SIGALRM (and so fails as "died of a signal").
// address_space_limit > 0 sets RLIMIT_AS in the child, to provoke allocation failures. Under
// AddressSanitizer, whose shadow memory needs terabytes of address space, it becomes ASan's
// own limit instead: any single allocation larger than the limit fails (returns null, so
// operator new throws std::bad_alloc as it would under RLIMIT_AS). ASan's warning about that
// failure goes to log_dir/asan.log.PID rather than to the stderr under test.
inline Child spawn_difftx(const std::vector<std::string>& args, const fs::path& log_dir,
                          const std::vector<std::string>& env = {},
                          uint64_t address_space_limit = 0, unsigned timeout_s = 120) {
  Child c;
  c.command = kBinary.string();
  for (const auto& a : args) c.command += " '" + a + "'";
  c.out_path = log_dir / "stdout.txt";
  c.err_path = log_dir / "stderr.txt";
  std::vector<std::string> argv_s{kBinary.string()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string asan_limit;
#ifdef DIFFTX_TEST_ASAN
  if (address_space_limit) {
    const char* given = std::getenv("ASAN_OPTIONS");
    asan_limit = std::string("ASAN_OPTIONS=") + (given ? given : "") +
                 ":allocator_may_return_null=1:max_allocation_size_mb=" +
                 std::to_string(address_space_limit >> 20) + ":log_path=" +
                 (log_dir / "asan.log").string();
    address_space_limit = 0;
  }
#endif
  c.pid = ::fork();
  if (c.pid < 0) throw std::runtime_error("test: fork failed");
  if (c.pid == 0) {
    const int fo = ::open(c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = ::open(c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0) ::_exit(126);
    ::dup2(fo, 1);
    ::dup2(fe, 2);
    ::close(fo);
    ::close(fe);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    if (!asan_limit.empty()) ::putenv(asan_limit.data());
    if (address_space_limit) {
      const rlimit lim{address_space_limit, address_space_limit};
      ::setrlimit(RLIMIT_AS, &lim);
    }
    ::alarm(timeout_s);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return c;
}

inline RunResult wait_difftx(const Child& c) {
  RunResult r;
  r.command = c.command;
  int ws = 0;
  while (::waitpid(c.pid, &ws, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("test: waitpid failed");
  r.exited = WIFEXITED(ws);
  if (r.exited) r.status = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) r.signal = WTERMSIG(ws);
  r.out = read_text(c.out_path);
  r.err = read_text(c.err_path);
  fs::remove(c.out_path);
  fs::remove(c.err_path);
  return r;
}

inline RunResult run_difftx(const std::vector<std::string>& args, const fs::path& log_dir,
                            uint64_t address_space_limit = 0, unsigned timeout_s = 120,
                            const std::vector<std::string>& env = {}) {
  return wait_difftx(spawn_difftx(args, log_dir, env, address_space_limit, timeout_s));
}

inline std::string report(const RunResult& r) {
  std::ostringstream s;
  s << "command: " << r.command << "\n";
  if (r.exited) s << "exit status: " << r.status << "\n";
  if (r.signal) s << "killed by signal " << r.signal << " (" << strsignal(r.signal) << ")\n";
  s << "stderr: [" << r.err << "]\nstdout: [" << r.out << "]";
  return s.str();
}

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) v.push_back(line);
  return v;
}

// The SPEC section 3 error contract: status 2, no signal, exactly one non-empty error line.
// When needle is given, the message must mention it (e.g. the offending key).
inline void expect_error_line(const RunResult& r, const std::string& needle = "") {
  SCOPED_TRACE(report(r));
  EXPECT_EQ(r.signal, 0) << "died of a signal";
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.status, 2);
  const auto lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << "stderr must be exactly one line";
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << "the error line must end in a newline";
  const std::string& line = lines[0];
  ASSERT_EQ(line.rfind(kErrorPrefix, 0), 0u) << "stderr must start with \"" << kErrorPrefix << "\"";
  const std::string message = line.substr(std::strlen(kErrorPrefix));
  EXPECT_NE(message.find_first_not_of(" \t"), std::string::npos) << "empty error message";
  if (!needle.empty()) {
    EXPECT_NE(message.find(needle), std::string::npos) << "the message must mention " << needle;
  }
}

}  // namespace cli_test
