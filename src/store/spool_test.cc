#include "store/spool.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "core/sha256.h"
#include "store/file_ops.h"
#include "store/index.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("conduit-spool-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t CountFiles(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

// The step of a commit at which FaultyFileOps fails.
enum class Step { kNone, kSyncFile, kSyncDirectory, kMakeDirectory, kRename };

// The real file system, except that one step fails with a chosen errno, and free space
// can be pretended.
class FaultyFileOps final : public FileOps {
 public:
  FaultyFileOps() : real_(NewPosixFileOps()) {}
  void FailAt(Step step, int err) {
    step_ = step;
    err_ = err;
  }
  void PretendFreeBytes(uint64_t bytes) { free_bytes_ = bytes; }

  int SyncFile(const fs::path& f) override { return Fault(Step::kSyncFile, real_->SyncFile(f)); }
  int SyncDirectory(const fs::path& d) override {
    return Fault(Step::kSyncDirectory, real_->SyncDirectory(d));
  }
  int MakeDirectory(const fs::path& d) override {
    if (step_ == Step::kMakeDirectory) return err_;
    return real_->MakeDirectory(d);
  }
  int Rename(const fs::path& from, const fs::path& to) override {
    if (step_ == Step::kRename) return err_;
    return real_->Rename(from, to);
  }
  int RenameNoReplace(const fs::path& from, const fs::path& to) override {
    if (step_ == Step::kRename) return err_;
    if (no_rename_noreplace_) return EINVAL;
    return real_->RenameNoReplace(from, to);
  }
  // As on a file system without RENAME_NOREPLACE.
  void RefuseRenameNoReplace() { no_rename_noreplace_ = true; }
  int Unlink(const fs::path& f) override { return real_->Unlink(f); }
  int FreeBytes(const fs::path& d, uint64_t* free_bytes) override {
    if (free_bytes_ != 0) {
      *free_bytes = free_bytes_;
      return 0;
    }
    return real_->FreeBytes(d, free_bytes);
  }

 private:
  int Fault(Step step, int real_result) { return step_ == step ? err_.load() : real_result; }
  std::unique_ptr<FileOps> real_;
  std::atomic<Step> step_{Step::kNone};
  std::atomic<int> err_{0};
  std::atomic<uint64_t> free_bytes_{0};
  std::atomic<bool> no_rename_noreplace_{false};
};

SpoolOptions Options(const fs::path& root) {
  SpoolOptions options;
  options.root = root;
  options.min_free_bytes = 1;
  return options;
}

TEST(SpoolTest, OpenCreatesLayout) {
  TempDir tmp;
  auto spool = Spool::Open(Options(tmp.path() / "spool"));
  ASSERT_TRUE(spool.ok()) << spool.status().ToString();
  for (const char* dir : {"incoming", "instances", "jobs", "quarantine"}) {
    EXPECT_TRUE(fs::is_directory(tmp.path() / "spool" / dir)) << dir;
  }
  EXPECT_EQ((*spool)->root(), tmp.path() / "spool");
}

TEST(SpoolTest, OpenRefusesARootThatCannotBeCreated) {
  TempDir tmp;
  WriteFile(tmp.path() / "a-file", "x");
  auto spool = Spool::Open(Options(tmp.path() / "a-file" / "spool"));
  ASSERT_FALSE(spool.ok());
  EXPECT_EQ(spool.status().code(), StatusCode::kInvalidArgument);
}

TEST(SpoolTest, CommitMovesTheFileUnderAKeyStableForTheSopInstanceUid) {
  TempDir tmp;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  const SopInstanceUid sop("1.2.826.0.1.3680043.8.498.1");

  fs::path first = spool->NewIncomingPath();
  WriteFile(first, "first bytes");
  auto key = spool->Commit(first, sop);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_FALSE(fs::exists(first));
  EXPECT_EQ(ReadFile(spool->PathOf(*key)), "first bytes");
  EXPECT_EQ(*key, Sha256Hex(sop.str()));
  EXPECT_EQ(spool->PathOf(*key).parent_path().parent_path(), tmp.path() / "instances");

  fs::path again = spool->NewIncomingPath();
  WriteFile(again, "resent bytes");
  auto key2 = spool->Commit(again, sop);
  ASSERT_TRUE(key2.ok());
  EXPECT_EQ(*key2, *key) << "the same SOP Instance UID must always map to the same key";
  EXPECT_EQ(ReadFile(spool->PathOf(*key)), "resent bytes") << "a re-sent instance replaces";

  fs::path other = spool->NewIncomingPath();
  WriteFile(other, "other");
  auto key3 = spool->Commit(other, SopInstanceUid("1.2.826.0.1.3680043.8.498.2"));
  ASSERT_TRUE(key3.ok());
  EXPECT_NE(*key3, *key);
}

TEST(SpoolTest, KeysAreStableAcrossReopen) {
  TempDir tmp;
  const SopInstanceUid sop("1.2.3.4.5");
  std::string key;
  {
    auto spool = std::move(Spool::Open(Options(tmp.path())).value());
    fs::path f = spool->NewIncomingPath();
    WriteFile(f, "bytes");
    key = spool->Commit(f, sop).value();
  }
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  EXPECT_EQ(ReadFile(spool->PathOf(key)), "bytes");
}

TEST(SpoolTest, NewIncomingPathsAreUniqueAndNotCreated) {
  TempDir tmp;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  std::set<fs::path> seen;
  for (int i = 0; i < 1000; ++i) {
    fs::path p = spool->NewIncomingPath();
    EXPECT_EQ(p.parent_path(), tmp.path() / "incoming");
    EXPECT_FALSE(fs::exists(p));
    EXPECT_TRUE(seen.insert(p).second) << p;
  }
}

TEST(SpoolTest, OpenRemovesPartialFilesLeftByACrash) {
  TempDir tmp;
  std::string key;
  {
    auto spool = std::move(Spool::Open(Options(tmp.path())).value());
    fs::path committed = spool->NewIncomingPath();
    WriteFile(committed, "kept");
    key = spool->Commit(committed, SopInstanceUid("1.2.3")).value();
    WriteFile(spool->NewIncomingPath(), "partial 1");
    WriteFile(spool->NewIncomingPath(), "partial 2");
    fs::create_directories(tmp.path() / "incoming" / "stray-dir");
    WriteFile(tmp.path() / "incoming" / "stray-dir" / "f", "x");
  }
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  EXPECT_TRUE(fs::is_empty(tmp.path() / "incoming"));
  EXPECT_EQ(ReadFile(spool->PathOf(key)), "kept");
}

TEST(SpoolTest, CommitOfAMissingFileIsNotFound) {
  TempDir tmp;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  auto key = spool->Commit(spool->NewIncomingPath(), SopInstanceUid("1.2.3"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kNotFound);
}

struct FaultCase {
  const char* name;
  Step step;
  int err;
  StatusCode want;
};

class SpoolFaultTest : public testing::TestWithParam<FaultCase> {};

TEST_P(SpoolFaultTest, CommitFailsWithTheMappedCodeAndLeavesNoFile) {
  const FaultCase& c = GetParam();
  TempDir tmp;
  auto ops = std::make_unique<FaultyFileOps>();
  FaultyFileOps* faults = ops.get();
  auto spool = std::move(OpenSpoolWithFileOps(Options(tmp.path()), std::move(ops)).value());
  const SopInstanceUid sop("1.2.840.113619.2.55.3.1");

  faults->FailAt(c.step, c.err);
  fs::path incoming = spool->NewIncomingPath();
  WriteFile(incoming, "bytes that never became durable");
  auto key = spool->Commit(incoming, sop);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), c.want) << key.status().ToString();
  EXPECT_EQ(key.status().message().find(sop.str()), std::string::npos)
      << "messages must not carry the UID: " << key.status().message();
  EXPECT_FALSE(fs::exists(incoming)) << "the incoming file must be removed on error";
  if (c.step == Step::kSyncDirectory || c.step == Step::kSyncFile) {
    // A new key is renamed before its fsync: the file may stand under its key, unknown to
    // the index (removing it could remove a concurrent re-send's acknowledged copy), but
    // nothing is left in incoming/.
    EXPECT_TRUE(fs::is_empty(tmp.path() / "incoming"));
  } else {
    EXPECT_EQ(CountFiles(tmp.path() / "incoming") + CountFiles(tmp.path() / "instances"), 0u)
        << "no partial file may remain anywhere";
  }

  faults->FailAt(Step::kNone, 0);
  fs::path retry = spool->NewIncomingPath();
  WriteFile(retry, "retried");
  auto retried = spool->Commit(retry, sop);
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_EQ(ReadFile(spool->PathOf(*retried)), "retried");
}

TEST(SpoolTest, AReSendFailingItsFsyncLeavesTheEarlierCopy) {
  TempDir tmp;
  auto ops = std::make_unique<FaultyFileOps>();
  FaultyFileOps* faults = ops.get();
  auto spool = std::move(OpenSpoolWithFileOps(Options(tmp.path()), std::move(ops)).value());
  const SopInstanceUid sop("1.2.840.113619.2.55.3.2");
  fs::path first = spool->NewIncomingPath();
  WriteFile(first, "acknowledged");
  auto key = spool->Commit(first, sop);
  ASSERT_TRUE(key.ok()) << key.status().ToString();

  faults->FailAt(Step::kSyncFile, EIO);
  fs::path again = spool->NewIncomingPath();
  WriteFile(again, "re-sent, never durable");
  auto failed = spool->Commit(again, sop);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ReadFile(spool->PathOf(*key)), "acknowledged")
      << "a copy is replaced only by bytes already durable";
  EXPECT_FALSE(fs::exists(again));
}

TEST(SpoolTest, WithoutRenameNoReplaceANewKeyIsSyncedBeforeItIsNamed) {
  TempDir tmp;
  auto ops = std::make_unique<FaultyFileOps>();
  ops->RefuseRenameNoReplace();
  auto spool = std::move(OpenSpoolWithFileOps(Options(tmp.path()), std::move(ops)).value());
  fs::path incoming = spool->NewIncomingPath();
  WriteFile(incoming, "old file system");
  auto key = spool->Commit(incoming, SopInstanceUid("1.2.840.113619.2.55.3.3"));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(ReadFile(spool->PathOf(*key)), "old file system");
  EXPECT_TRUE(fs::is_empty(tmp.path() / "incoming"));
}

// Commits `sop` with `bytes`; the key.
std::string CommitBytes(Spool& spool, const std::string& sop, const std::string& bytes) {
  fs::path f = spool.NewIncomingPath();
  WriteFile(f, bytes);
  auto key = spool.Commit(f, SopInstanceUid(sop));
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return key.ok() ? *key : std::string();
}

// What the index would say: only the keys in `recorded` are recorded; every question is kept.
struct FakeIndexCheck {
  std::set<std::string> recorded;
  std::vector<std::pair<std::string, std::string>> asked;
  Spool::RecordedCheck Check() {
    return [this](const std::string& key, const SopInstanceUid& sop) -> Result<bool> {
      asked.emplace_back(key, sop.str());
      return recorded.contains(key);
    };
  }
};

TEST(SpoolTest, ASecondOpenOfTheSameRootIsRefusedUntilTheFirstCloses) {
  TempDir tmp;
  auto first = Spool::Open(Options(tmp.path()));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  fs::path partial = (*first)->NewIncomingPath();
  WriteFile(partial, "being received");
  auto second = Spool::Open(Options(tmp.path()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << second.status().message();
  EXPECT_TRUE(fs::exists(partial)) << "a refused open must not touch the first one's files";
  first->reset();
  auto third = Spool::Open(Options(tmp.path()));
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST(SpoolTest, AFileACrashLeftNamedButUnrecordedIsRemovedAtTheNextStart) {
  TempDir tmp;
  std::string recorded_key;
  std::string unrecorded_key;
  {
    auto spool = std::move(Spool::Open(Options(tmp.path())).value());
    recorded_key = CommitBytes(*spool, "1.2.826.0.1.1", "acknowledged");
    spool->Settled(recorded_key);
    unrecorded_key = CommitBytes(*spool, "1.2.826.0.1.2", "never acknowledged");
    // Going out of scope here is the crash: the second key was never recorded.
  }
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  FakeIndexCheck index{{recorded_key}, {}};
  auto removed = spool->RemoveUnrecorded(index.Check());
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(ReadFile(spool->PathOf(recorded_key)), "acknowledged");
  EXPECT_FALSE(fs::exists(spool->PathOf(unrecorded_key)));
  ASSERT_EQ(index.asked.size(), 2u) << "the earlier log holds both: one generation";
  EXPECT_EQ(index.asked[1], std::make_pair(unrecorded_key, std::string("1.2.826.0.1.2")));
  EXPECT_TRUE(fs::is_empty(tmp.path() / "names")) << "the earlier log is gone once checked";

  index.asked.clear();
  EXPECT_EQ(spool->RemoveUnrecorded(index.Check()).value(), 0);
  EXPECT_TRUE(index.asked.empty()) << "nothing is checked twice";
}

// A spool whose boot id comes from a file the test writes: `boot` is the current boot.
SpoolOptions BootOptions(const fs::path& dir, const std::string& boot) {
  SpoolOptions options = Options(dir / "spool");
  options.boot_id_file = dir / "boot_id";
  WriteFile(options.boot_id_file, boot + "\n");
  return options;
}

constexpr char kBootA[] = "7c1e7d2a-0b7e-4f7e-9a51-3a1d2c4b5e6f";
constexpr char kBootB[] = "0d9c4f1e-5a6b-4c7d-8e9f-a0b1c2d3e4f5";

TEST(SpoolTest, TheFirstOpenKnowsNoPreviousStopAndRecordsItsPidAndBoot) {
  TempDir tmp;
  auto spool = Spool::Open(BootOptions(tmp.path(), kBootA));
  ASSERT_TRUE(spool.ok()) << spool.status().ToString();
  EXPECT_EQ((*spool)->previous_stop(), PreviousStop::kUnknown);
  EXPECT_EQ(ReadFile(tmp.path() / "spool" / "lock"),
            std::to_string(::getpid()) + " " + kBootA + "\n");
}

TEST(SpoolTest, ASpoolThatWasClosedLeavesACleanStop) {
  TempDir tmp;
  Spool::Open(BootOptions(tmp.path(), kBootA)).value().reset();
  EXPECT_EQ(ReadFile(tmp.path() / "spool" / "lock"), "stopped\n");
  auto again = Spool::Open(BootOptions(tmp.path(), kBootA));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->previous_stop(), PreviousStop::kClean);
}

TEST(SpoolTest, AProcessThatDiedInThisBootIsACrashAndInAnEarlierOneAHostRestart) {
  for (const char* next_boot : {kBootA, kBootB}) {
    TempDir tmp;
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto spool = Spool::Open(BootOptions(tmp.path(), kBootA));
      ::_exit(spool.ok() ? 0 : 2);  // no destructors: the process dies with the spool open
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    auto spool = Spool::Open(BootOptions(tmp.path(), next_boot));
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    EXPECT_EQ((*spool)->previous_stop(),
              next_boot == kBootA ? PreviousStop::kCrashed : PreviousStop::kHostRestarted)
        << next_boot;
  }
}

TEST(SpoolTest, ALockFileWithoutABootOrNoBootIdToCompareIsAnUnknownStop) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "spool");
  WriteFile(tmp.path() / "spool" / "lock", "4242\n");  // as versions before this wrote it
  EXPECT_EQ(Spool::Open(BootOptions(tmp.path(), kBootA)).value()->previous_stop(),
            PreviousStop::kUnknown);
  WriteFile(tmp.path() / "spool" / "lock", std::string("4242 ") + kBootB + "\n");
  SpoolOptions unreadable = BootOptions(tmp.path(), "not a boot id!");
  EXPECT_EQ(Spool::Open(unreadable).value()->previous_stop(), PreviousStop::kUnknown);
}

TEST(SpoolTest, AProcessKilledBetweenCommitAndIndexLeavesItsKeyToTheNextStart) {
  TempDir tmp;
  const std::string key = Sha256Hex("1.2.826.0.1.3");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto spool = Spool::Open(Options(tmp.path()));
    if (!spool.ok()) ::_exit(2);
    fs::path f = (*spool)->NewIncomingPath();
    WriteFile(f, "named, then the process died");
    ::_exit((*spool)->Commit(f, SopInstanceUid("1.2.826.0.1.3")).ok() ? 0 : 3);  // no destructors
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  ASSERT_TRUE(fs::exists(spool->PathOf(key)));
  FakeIndexCheck index;
  EXPECT_EQ(spool->RemoveUnrecorded(index.Check()).value(), 1);
  EXPECT_FALSE(fs::exists(spool->PathOf(key)));
}

TEST(SpoolTest, AClosedSpoolWhoseKeysAreAllRecordedLeavesNoNameLog) {
  TempDir tmp;
  {
    auto spool = std::move(Spool::Open(Options(tmp.path())).value());
    for (int i = 0; i < 3; ++i) {
      spool->Settled(CommitBytes(*spool, "1.2.826.0.2." + std::to_string(i), "x"));
    }
    spool->Settled(CommitBytes(*spool, "1.2.826.0.2.0", "re-sent"));
    EXPECT_FALSE(fs::is_empty(tmp.path() / "names")) << "written while open";
  }
  EXPECT_TRUE(fs::is_empty(tmp.path() / "names"));
}

TEST(SpoolTest, WhenTheIndexCannotAnswerNothingIsRemovedAndTheLogStays) {
  TempDir tmp;
  std::string key;
  {
    auto spool = std::move(Spool::Open(Options(tmp.path())).value());
    key = CommitBytes(*spool, "1.2.826.0.3.1", "unrecorded");
  }
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  auto removed =
      spool->RemoveUnrecorded([](const std::string&, const SopInstanceUid&) -> Result<bool> {
        return DataLoss("index unreadable");
      });
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(fs::exists(spool->PathOf(key)));
  FakeIndexCheck index;
  EXPECT_EQ(spool->RemoveUnrecorded(index.Check()).value(), 1) << "checked again next time";
}

TEST(SpoolTest, OnlyWellFormedLinesOfAnEarlierLogNameFiles) {
  TempDir tmp;
  std::string key;
  {
    auto spool = std::move(Spool::Open(Options(tmp.path())).value());
    key = CommitBytes(*spool, "1.2.826.0.4.1", "kept");
    spool->Settled(key);
  }
  // A torn line, and a line whose key is not its UID's hash: neither may remove a file.
  WriteFile(tmp.path() / "names" / "earlier-0.log",
            key + " 1.2.826.0.4.2\n" + key.substr(0, 40) + "\n" + "\n");
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  FakeIndexCheck index;
  EXPECT_EQ(spool->RemoveUnrecorded(index.Check()).value(), 0);
  EXPECT_TRUE(index.asked.empty());
  EXPECT_EQ(ReadFile(spool->PathOf(key)), "kept");
  EXPECT_TRUE(fs::is_empty(tmp.path() / "names"));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, SpoolFaultTest,
    testing::Values(
        FaultCase{"FsyncEnospc", Step::kSyncFile, ENOSPC, StatusCode::kResourceExhausted},
        FaultCase{"FsyncEdquot", Step::kSyncFile, EDQUOT, StatusCode::kResourceExhausted},
        FaultCase{"FsyncEio", Step::kSyncFile, EIO, StatusCode::kDataLoss},
        FaultCase{"DirectoryFsyncEio", Step::kSyncDirectory, EIO, StatusCode::kDataLoss},
        FaultCase{"RenameEnospc", Step::kRename, ENOSPC, StatusCode::kResourceExhausted},
        FaultCase{"RenameEio", Step::kRename, EIO, StatusCode::kDataLoss}),
    [](const testing::TestParamInfo<FaultCase>& p) { return p.param.name; });

TEST(SpoolTest, CheckSpaceRefusesBelowTheMinimum) {
  TempDir tmp;
  SpoolOptions options = Options(tmp.path());
  options.min_free_bytes = ~0ull;  // more than any disk has
  auto spool = std::move(Spool::Open(options).value());
  Status st = spool->CheckSpace();
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("bytes free"), std::string::npos) << st.message();

  fs::path incoming = spool->NewIncomingPath();
  WriteFile(incoming, "x");
  auto key = spool->Commit(incoming, SopInstanceUid("1.2.3"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(fs::exists(incoming));
}

TEST(SpoolTest, CheckSpaceNamesTheFreeBytes) {
  TempDir tmp;
  auto ops = std::make_unique<FaultyFileOps>();
  ops->PretendFreeBytes(1000);
  SpoolOptions options = Options(tmp.path());
  options.min_free_bytes = 4096;
  auto spool = std::move(OpenSpoolWithFileOps(options, std::move(ops)).value());
  Status st = spool->CheckSpace();
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("1000 bytes free"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("4096"), std::string::npos) << st.message();
}

TEST(SpoolTest, CheckSpaceAcceptsEnoughSpace) {
  TempDir tmp;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  EXPECT_TRUE(spool->CheckSpace().ok());
}

TEST(SpoolTest, RemoveDeletesACommittedFileAndToleratesMissing) {
  TempDir tmp;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  fs::path f = spool->NewIncomingPath();
  WriteFile(f, "x");
  std::string key = spool->Commit(f, SopInstanceUid("1.2.3")).value();
  EXPECT_TRUE(spool->Remove(key).ok());
  EXPECT_FALSE(fs::exists(spool->PathOf(key)));
  EXPECT_TRUE(spool->Remove(key).ok()) << "missing is OK";
  EXPECT_EQ(spool->Remove("../../etc/passwd").code(), StatusCode::kInvalidArgument);
}

TEST(SpoolTest, JobDirIsCreatedEmptyAndRemoved) {
  TempDir tmp;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  auto dir = spool->JobDir(42);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(*dir, tmp.path() / "jobs" / "42");
  WriteFile(*dir / "leftover", "x");
  auto again = spool->JobDir(42);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(fs::is_empty(*again)) << "JobDir empties an existing folder";
  EXPECT_EQ(spool->RemoveJobDir(42).value(), true);
  EXPECT_FALSE(fs::exists(*dir));
  EXPECT_EQ(spool->RemoveJobDir(42).value(), false) << "missing is OK";
  EXPECT_EQ(spool->JobDir(0).status().code(), StatusCode::kInvalidArgument);
}

TEST(SpoolTest, ConcurrentCommitsAllLand) {
  TempDir tmp;
  auto spool = std::move(Spool::Open(Options(tmp.path())).value());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          fs::path f = spool->NewIncomingPath();
          WriteFile(f, std::to_string(t) + "/" + std::to_string(i));
          auto key = spool->Commit(
              f, SopInstanceUid("1.2.3." + std::to_string(t) + "." + std::to_string(i)));
          if (!key.ok()) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountFiles(tmp.path() / "instances"), size_t{kThreads * kPerThread});
  EXPECT_TRUE(fs::is_empty(tmp.path() / "incoming"));
}

TEST(SpoolTest, FsyncHelpers) {
  TempDir tmp;
  WriteFile(tmp.path() / "f", "x");
  EXPECT_TRUE(FsyncPath(tmp.path() / "f").ok());
  EXPECT_TRUE(FsyncDirectory(tmp.path()).ok());
  EXPECT_EQ(FsyncPath(tmp.path() / "missing").code(), StatusCode::kNotFound);
  EXPECT_EQ(FsyncDirectory(tmp.path() / "missing").code(), StatusCode::kNotFound);
}

TEST(StudyRefTest, IsTheFirstSixteenHexDigitsOfSha256) {
  // Expected values from coreutils' sha256sum.
  std::string ref = StudyRef(StudyUid("1.2.3"));
  EXPECT_EQ(ref, "c47f5b18b8a430e6");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_NE(StudyRef(StudyUid("1.2.4")), ref);
}

}  // namespace
}  // namespace conduit
