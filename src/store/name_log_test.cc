#include "store/name_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/sha256.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

class NameLogTest : public ::testing::Test {
 protected:
  NameLogTest() : dir_(tmp_.path()) {}
  std::set<std::string> Files() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }
  std::set<std::string> EarlierKeys() const {
    NameLog reader(dir_, "reader");
    std::set<std::string> keys;
    auto earlier = reader.ReadEarlier();
    EXPECT_TRUE(earlier.ok()) << earlier.status().ToString();
    if (earlier.ok()) {
      for (const auto& e : earlier->entries) keys.insert(e.key);
    }
    return keys;
  }
  testing::TempDir tmp_;
  fs::path dir_;
};

std::string Key(const std::string& sop) { return Sha256Hex(sop); }

TEST_F(NameLogTest, AGenerationGoesOnceClosedAndEveryKeyInItIsSettled) {
  NameLog log(dir_, "run", /*rotate_bytes=*/1);  // one line per generation
  log.Add(Key("1.1"), SopInstanceUid("1.1"));
  log.Add(Key("1.2"), SopInstanceUid("1.2"));
  EXPECT_EQ(Files(), (std::set<std::string>{"run-0.log", "run-1.log"}));
  log.Settle(Key("1.1"));
  EXPECT_EQ(Files(), (std::set<std::string>{"run-1.log"})) << "closed and all settled";
  log.Settle(Key("1.2"));
  EXPECT_EQ(Files(), (std::set<std::string>{"run-1.log"})) << "still the one being written";
  log.Settle(Key("unknown"));  // ignored
  log.Add(Key("1.3"), SopInstanceUid("1.3"));
  EXPECT_EQ(Files(), (std::set<std::string>{"run-2.log"}));
  EXPECT_EQ(EarlierKeys(), (std::set<std::string>{Key("1.3")}));
}

TEST_F(NameLogTest, AKeyAddedTwiceIsForgottenAfterTwoSettles) {
  {
    NameLog log(dir_, "run");
    log.Add(Key("2.1"), SopInstanceUid("2.1"));
    log.Add(Key("2.1"), SopInstanceUid("2.1"));
    log.Settle(Key("2.1"));
  }
  EXPECT_EQ(EarlierKeys(), (std::set<std::string>{Key("2.1")})) << "one Add unsettled";
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  {
    NameLog log(dir_, "run");
    log.Add(Key("2.1"), SopInstanceUid("2.1"));
    log.Add(Key("2.1"), SopInstanceUid("2.1"));
    log.Settle(Key("2.1"));
    log.Settle(Key("2.1"));
  }
  EXPECT_TRUE(Files().empty());
}

TEST_F(NameLogTest, ReadEarlierSkipsItsOwnRunAndOtherFiles) {
  NameLog mine(dir_, "mine");
  mine.Add(Key("3.1"), SopInstanceUid("3.1"));
  {
    NameLog earlier(dir_, "earlier");
    earlier.Add(Key("3.2"), SopInstanceUid("3.2"));
  }
  std::ofstream(dir_ / "notes.txt") << Key("3.3") << " 3.3\n";
  auto read = mine.ReadEarlier();
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->entries.size(), 1u);
  EXPECT_EQ(read->entries[0].key, Key("3.2"));
  EXPECT_EQ(read->entries[0].sop.str(), "3.2");
  ASSERT_EQ(read->files.size(), 1u);
  EXPECT_EQ(read->files[0].filename(), "earlier-0.log");
}

TEST_F(NameLogTest, AnUnwritableDirectoryDoesNotStopNaming) {
  NameLog log(dir_ / "missing", "run");
  log.Add(Key("4.1"), SopInstanceUid("4.1"));  // warns once, no throw, no crash
  log.Settle(Key("4.1"));
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

}  // namespace
}  // namespace conduit
