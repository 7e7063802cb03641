// DirLock: one holder at a time (even within one process: flock is per open file), a clear
// error naming the holder's pid, and a lock left by a dead process is taken over.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/dir_lock.h"
#include "core/error.h"
#include "core/files.h"
#include "test_util.h"

namespace difftx {
namespace {

TEST(DirLock, SecondHolderGetsAnErrorNamingThePid) {
  test::TempDir dir;
  {
    DirLock first(dir.path().string());
    try {
      DirLock second(dir.path().string());
      ADD_FAILURE() << "the directory was locked twice";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("in use"), std::string::npos) << what;
      EXPECT_NE(what.find(std::to_string(::getpid())), std::string::npos) << what;
    }
  }
  EXPECT_NO_THROW(DirLock again(dir.path().string())) << "released when its holder goes";
}

TEST(DirLock, StaleLockFileOfADeadProcessIsTakenOver) {
  test::TempDir dir;
  std::ofstream(dir / DirLock::kFileName) << "999999999\n";
  DirLock lock(dir.path().string());
  EXPECT_EQ(read_file_text(dir / DirLock::kFileName), std::to_string(::getpid()) + "\n");
}

TEST(DirLock, MissingDirectoryIsAnError) {
  test::TempDir dir;
  EXPECT_THROW(DirLock lock(dir / "missing"), Error);
}

TEST(StagedDirectory, AppearsOnlyWhenCommitted) {
  test::TempDir dir;
  const std::string target = dir / "run";
  {
    StagedDirectory staged(target);
    std::ofstream(staged.path() + "/a.txt") << "x";
    EXPECT_FALSE(std::filesystem::exists(target));
    staged.commit();
  }
  EXPECT_EQ(read_file_text(target + "/a.txt"), "x");
  // Abandoned (an error before commit): nothing is left, not even the staging folder.
  const std::string other = dir / "other";
  {
    StagedDirectory staged(other);
    std::ofstream(staged.path() + "/a.txt") << "x";
  }
  EXPECT_FALSE(std::filesystem::exists(other));
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  // A non-empty target is refused.
  EXPECT_THROW(StagedDirectory again(target), Error);
}

}  // namespace
}  // namespace difftx
