// dist::Comm as one process (the path of every run not started by mpirun, and of builds
// without MPI): collectives are identities, together() passes errors through with their
// field, and the weight checksum sees a single flipped bit and a swapped pair.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"

namespace {
using difftx::dist::Comm;

TEST(Comm, OneProcessCollectivesAreIdentities) {
  const Comm one;
  EXPECT_EQ(one.size(), 1);
  EXPECT_TRUE(one.root());
  std::vector<float> f{1.5f, -2.0f};
  one.sum(f.data(), f.size());
  EXPECT_EQ(f, (std::vector<float>{1.5f, -2.0f}));
  double d = 3.25;
  one.sum(&d, 1);
  EXPECT_EQ(d, 3.25);
  EXPECT_EQ(one.gather_all(42), std::vector<uint64_t>{42});
  EXPECT_EQ(one.broadcast("text", 0), "text");
}

TEST(Comm, TogetherPassesAnErrorThroughWithItsField) {
  const Comm one;
  int ran = 0;
  one.together([&] { ++ran; });
  EXPECT_EQ(ran, 1);
  try {
    one.together([] { throw difftx::Error("bad batch", "batch"); });
    FAIL() << "no error";
  } catch (const difftx::Error& e) {
    EXPECT_STREQ(e.what(), "bad batch");
    EXPECT_EQ(e.field(), "batch");
  }
}

TEST(Comm, WorldIsOneProcessWithoutMpirun) {
  EXPECT_EQ(difftx::dist::world().size(), 1);  // ctest does not start this under mpirun
}

TEST(Comm, ChecksumSeesOneBitAndOrder) {
  std::vector<float> w(1000);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>(i) - 3.0f;
  const uint64_t base = difftx::dist::checksum(w.data(), w.size());
  EXPECT_EQ(base, difftx::dist::checksum(w.data(), w.size()));
  auto flipped = w;
  uint32_t bits;
  std::memcpy(&bits, &flipped[500], 4);
  bits ^= 1u;  // the last mantissa bit: a one-ulp divergence
  std::memcpy(&flipped[500], &bits, 4);
  EXPECT_NE(base, difftx::dist::checksum(flipped.data(), flipped.size()));
  auto swapped = w;
  std::swap(swapped[3], swapped[700]);
  EXPECT_NE(base, difftx::dist::checksum(swapped.data(), swapped.size()));
}

}  // namespace
