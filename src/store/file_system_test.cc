#include "store/file_system.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <fstream>

#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

TEST(ClassifyFileSystemTest, ExtIsJournalingOnlyWithAJournal) {
  EXPECT_EQ(ClassifyFileSystem(EXT4_SUPER_MAGIC, "vda", true).durability, Durability::kJournaling);
  const FileSystemFacts bare = ClassifyFileSystem(EXT4_SUPER_MAGIC, "vda", false);
  EXPECT_EQ(bare.durability, Durability::kNoJournal);
  EXPECT_EQ(bare.type, "ext2/3/4");
  EXPECT_NE(DurabilityAdvice(bare).find("without a journal"), std::string::npos);
  EXPECT_NE(DurabilityAdvice(bare).find("vda"), std::string::npos);
}

TEST(ClassifyFileSystemTest, NamesEachKindWithAdviceForAllButJournaling) {
  struct Case {
    unsigned long magic;
    Durability durability;
    const char* type;
  };
  for (const Case& c : {Case{XFS_SUPER_MAGIC, Durability::kJournaling, "xfs"},
                        Case{BTRFS_SUPER_MAGIC, Durability::kJournaling, "btrfs"},
                        Case{TMPFS_MAGIC, Durability::kVolatile, "tmpfs"},
                        Case{RAMFS_MAGIC, Durability::kVolatile, "ramfs"},
                        Case{NFS_SUPER_MAGIC, Durability::kNetwork, "nfs"},
                        Case{SMB2_SUPER_MAGIC, Durability::kNetwork, "smb"},
                        Case{FUSE_SUPER_MAGIC, Durability::kNetwork, "fuse"},
                        Case{OVERLAYFS_SUPER_MAGIC, Durability::kUnknown, "overlay"},
                        Case{0x1234abcd, Durability::kUnknown, "0x1234abcd"}}) {
    const FileSystemFacts facts = ClassifyFileSystem(c.magic, "", false);
    EXPECT_EQ(facts.durability, c.durability) << c.type;
    EXPECT_EQ(facts.type, c.type);
    EXPECT_EQ(DurabilityAdvice(facts).empty(), c.durability == Durability::kJournaling) << c.type;
  }
  EXPECT_NE(DurabilityAdvice(ClassifyFileSystem(TMPFS_MAGIC, "", false)).find("reboot"),
            std::string::npos);
  EXPECT_NE(DurabilityAdvice(ClassifyFileSystem(OVERLAYFS_SUPER_MAGIC, "", false)).find("volume"),
            std::string::npos);
  EXPECT_NE(DurabilityAdvice(ClassifyFileSystem(NFS_SUPER_MAGIC, "", false)).find("its server"),
            std::string::npos);
  EXPECT_NE(DurabilityAdvice(ClassifyFileSystem(FUSE_SUPER_MAGIC, "", false)).find("its daemon"),
            std::string::npos);
  EXPECT_EQ(DurabilityName(Durability::kNoJournal), "no-journal");
  EXPECT_EQ(DurabilityName(Durability::kVolatile), "volatile");
}

// Fake /proc and /sys that say the temp dir's device is "vdz" and list `journals` under jbd2.
KernelViews FakeViews(const fs::path& root, const fs::path& dir,
                      std::initializer_list<const char*> journals) {
  struct stat st {};
  EXPECT_EQ(::stat(dir.c_str(), &st), 0);
  KernelViews views{root / "proc", root / "sys"};
  const fs::path dev = views.sys / "dev" / "block" /
                       (std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)));
  fs::create_directories(dev);
  std::ofstream(dev / "uevent") << "MAJOR=254\nMINOR=0\nDEVNAME=vdz\nDEVTYPE=disk\n";
  fs::create_directories(views.proc / "fs" / "jbd2");
  for (const char* j : journals) fs::create_directories(views.proc / "fs" / "jbd2" / j);
  return views;
}

TEST(InspectFileSystemTest, FindsTheDevicesJournalByName) {
  testing::TempDir tmp;
  const fs::path dir = tmp.path() / "data";
  fs::create_directories(dir);
  struct statfs probe {};
  ASSERT_EQ(::statfs(dir.c_str(), &probe), 0);
  if (static_cast<unsigned long>(probe.f_type) != EXT4_SUPER_MAGIC) {
    GTEST_SKIP() << "the temp dir is not on an ext file system";
  }
  Result<FileSystemFacts> with =
      InspectFileSystem(dir, FakeViews(tmp.path() / "a", dir, {"vdz-8", "vdzz-8"}));
  ASSERT_TRUE(with.ok()) << with.status().message();
  EXPECT_EQ(with->device, "vdz");
  EXPECT_EQ(with->durability, Durability::kJournaling);
  // Another device's journal, or a name that only starts like this device's, is not its own.
  Result<FileSystemFacts> without =
      InspectFileSystem(dir, FakeViews(tmp.path() / "b", dir, {"vdzz-8", "vdz-x", "vd-8"}));
  ASSERT_TRUE(without.ok()) << without.status().message();
  EXPECT_EQ(without->durability, Durability::kNoJournal);
}

TEST(InspectFileSystemTest, TmpfsIsVolatile) {
  const fs::path shm = "/dev/shm";
  struct statfs probe {};
  if (::statfs(shm.c_str(), &probe) != 0 ||
      static_cast<unsigned long>(probe.f_type) != TMPFS_MAGIC) {
    GTEST_SKIP() << "no tmpfs at /dev/shm";
  }
  Result<FileSystemFacts> facts = InspectFileSystem(shm);
  ASSERT_TRUE(facts.ok()) << facts.status().message();
  EXPECT_EQ(facts->type, "tmpfs");
  EXPECT_EQ(facts->durability, Durability::kVolatile);
  EXPECT_TRUE(facts->device.empty());
}

TEST(InspectFileSystemTest, AMissingDirectoryIsAnError) {
  testing::TempDir tmp;
  Result<FileSystemFacts> facts = InspectFileSystem(tmp.path() / "absent");
  ASSERT_FALSE(facts.ok());
  EXPECT_EQ(facts.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace conduit
