#pragma once
// The ranks of a data-parallel job, behind a small interface: OpenMPI when difftx is built with
// it (DIFFTX_HAVE_MPI) and started by mpirun, one process otherwise. Every collective here must
// be called by every rank in the same order; the single-process fallback makes each a no-op
// (or a copy), so the training loop is written once.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace difftx::dist {

class Comm {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_size() const { return local_size_; }  // ranks on this host (threads per rank)
  bool root() const { return rank_ == 0; }

  // In-place sums over all ranks (the same result on every rank).
  void sum(float* data, size_t n) const;
  void sum(double* data, size_t n) const;
  // Every rank's value, in rank order.
  std::vector<uint64_t> gather_all(uint64_t value) const;
  // Rank `from`'s text on every rank.
  std::string broadcast(const std::string& text, int from) const;
  // Ends every rank of the job at once (after a failure that the others cannot see, which would
  // otherwise leave them waiting in a collective).
  [[noreturn]] void abort(int status) const;

  // Runs fn on this rank, then agrees with the others: if it threw Error on any rank, every
  // rank throws Error with the message of the lowest failing rank. A failure on one rank thus
  // ends all of them with one message instead of leaving the rest waiting.
  void together(const std::function<void()>& fn) const;

 private:
  friend const Comm& world();
  int rank_ = 0, size_ = 1, local_size_ = 1;
};

// The job's ranks, set up at the first call (MPI_Init when started by mpirun; MPI is finalized
// at exit). Throws Error when started by mpirun with more than one rank but built without MPI.
const Comm& world();
// Whether this build has MPI.
bool have_mpi();

// A cheap fingerprint of a float buffer's exact bits (for comparing weights across ranks).
uint64_t checksum(const float* data, size_t n);
// FNV-1a of bytes, continuing from h.
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ULL);

}  // namespace difftx::dist
