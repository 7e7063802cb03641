#include "dist/comm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

#ifdef DIFFTX_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: no deprecated C++ bindings
#include <mpi.h>
#endif

namespace difftx::dist {
namespace {
// Set by mpirun (OpenMPI) in every rank's environment.
int launcher_size() {
  const char* s = std::getenv("OMPI_COMM_WORLD_SIZE");
  return s ? std::atoi(s) : 1;
}

#ifdef DIFFTX_HAVE_MPI
bool g_mpi = false;  // MPI_Init was called (and MPI_Finalize is due at exit)
void finalize_at_exit() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}
#endif
}  // namespace

bool have_mpi() {
#ifdef DIFFTX_HAVE_MPI
  return true;
#else
  return false;
#endif
}

const Comm& world() {
  static const Comm w = [] {
    Comm c;
#ifdef DIFFTX_HAVE_MPI
    if (launcher_size() > 1) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      g_mpi = true;
      std::atexit(finalize_at_exit);
      // A failing collective returns an error (turned into Error) instead of ending the job.
      MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
      MPI_Comm_rank(MPI_COMM_WORLD, &c.rank_);
      MPI_Comm_size(MPI_COMM_WORLD, &c.size_);
      MPI_Comm local;
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
      MPI_Comm_size(local, &c.local_size_);
      MPI_Comm_free(&local);
    }
#else
    check(launcher_size() <= 1, "this difftx was built without MPI, so data-parallel training "
          "(mpirun -np N) is absent; install libopenmpi-dev and rebuild");
#endif
    return c;
  }();
  return w;
}

#ifdef DIFFTX_HAVE_MPI
namespace {
void ok(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string("MPI ") + what + " failed: " + std::string(msg, static_cast<size_t>(len)));
}
}  // namespace
#endif

void Comm::sum(float* data, size_t n) const {
  if (size_ == 1) return;
#ifdef DIFFTX_HAVE_MPI
  // MPI counts are int: large buffers go in chunks.
  for (size_t at = 0; at < n; at += size_t{1} << 30) {
    const int count = static_cast<int>(std::min(n - at, size_t{1} << 30));
    ok(MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "all-reduce");
  }
#else
  (void)data, (void)n;
#endif
}

void Comm::sum(double* data, size_t n) const {
  if (size_ == 1) return;
#ifdef DIFFTX_HAVE_MPI
  ok(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
     "all-reduce");
#else
  (void)data, (void)n;
#endif
}

std::vector<uint64_t> Comm::gather_all(uint64_t value) const {
  std::vector<uint64_t> all(static_cast<size_t>(size_), value);
#ifdef DIFFTX_HAVE_MPI
  if (size_ > 1)
    ok(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD),
       "all-gather");
#endif
  return all;
}

std::string Comm::broadcast(const std::string& text, int from) const {
  if (size_ == 1) return text;
  std::string out = text;
#ifdef DIFFTX_HAVE_MPI
  uint64_t n = text.size();
  ok(MPI_Bcast(&n, 1, MPI_UINT64_T, from, MPI_COMM_WORLD), "broadcast");
  out.resize(n);
  ok(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, from, MPI_COMM_WORLD), "broadcast");
#else
  (void)from;
#endif
  return out;
}

void Comm::abort(int status) const {
#ifdef DIFFTX_HAVE_MPI
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, status);
#endif
  std::exit(status);
}

void Comm::together(const std::function<void()>& fn) const {
  if (size_ == 1) return fn();
  std::string failure;  // field, newline, message
  bool failed = false;
  try {
    fn();
  } catch (const Error& e) {
    failed = true;
    failure = e.field() + "\n" + e.what();
  }
  const std::vector<uint64_t> flags = gather_all(failed ? 1 : 0);
  for (int r = 0; r < size_; ++r)
    if (flags[static_cast<size_t>(r)]) {
      const std::string m = broadcast(failure, r);
      const size_t nl = m.find('\n');
      throw Error(m.substr(nl + 1), m.substr(0, nl));
    }
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

uint64_t checksum(const float* data, size_t n) {
  // Position-weighted sum of the bit patterns: any flipped bit or swapped pair changes it, and
  // it parallelises (a sequential hash over 100M floats would cost a step).
  uint64_t s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, 4);
    s += (static_cast<uint64_t>(bits) + 1) * (2 * static_cast<uint64_t>(i) + 1);
  }
  return s;
}

}  // namespace difftx::dist
