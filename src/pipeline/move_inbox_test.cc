// MoveInbox: which received instances a C-MOVE retrieve takes aside, and which the ingest path
// keeps; files on a temp dir.
#include "pipeline/move_inbox.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>

#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

class MoveInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(incoming());
    fs::create_directories(retrieve_dir());
  }
  fs::path incoming() const { return dir_.path() / "incoming"; }
  fs::path retrieve_dir() const { return dir_.path() / "retrieve"; }

  // An instance of `study` just written by the listener, from `calling_ae`.
  ReceivedInstance Received(const std::string& study, const std::string& calling_ae,
                            const std::string& move_originator = "", const std::string& sop = "") {
    const fs::path file = incoming() / ("in-" + std::to_string(++count_));
    std::ofstream(file) << "instance " << count_;
    ReceivedInstance instance;
    instance.file = file;
    instance.meta.study_uid = StudyUid(study);
    instance.meta.sop_instance_uid =
        SopInstanceUid(sop.empty() ? study + "." + std::to_string(count_) : sop);
    instance.association.calling_ae = AeTitle(calling_ae);
    instance.move_originator = AeTitle(move_originator);
    return instance;
  }

  testing::TempDir dir_;
  int count_ = 0;
  MoveInbox inbox_{AeTitle("CONDUIT")};
};

TEST_F(MoveInboxTest, TakesTheExpectedStudyFromThePacsOrNamingUsAsOriginator) {
  auto expected = inbox_.Expect(StudyUid("1.2.3"), AeTitle("PACS"), retrieve_dir());
  const ReceivedInstance from_pacs = Received("1.2.3", "PACS");
  std::optional<Status> taken = inbox_.Take(from_pacs);
  ASSERT_TRUE(taken.has_value());
  EXPECT_TRUE(taken->ok()) << taken->ToString();
  // A PACS whose archive node calls from another AE title, naming us as move originator.
  taken = inbox_.Take(Received("1.2.3", "PACS-NODE2", "CONDUIT"));
  ASSERT_TRUE(taken.has_value());
  EXPECT_TRUE(taken->ok());

  const auto files = expected->files();
  ASSERT_EQ(files.size(), 2u);
  for (const fs::path& f : files) EXPECT_EQ(f.parent_path(), retrieve_dir());
  EXPECT_FALSE(fs::exists(from_pacs.file)) << "moved, not copied";
  std::string content;
  std::getline(std::ifstream(files[0]), content);
  EXPECT_EQ(content, "instance 1");
}

TEST_F(MoveInboxTest, LeavesOtherInstancesToTheIngestPath) {
  auto expected = inbox_.Expect(StudyUid("1.2.3"), AeTitle("PACS"), retrieve_dir());
  // The same PACS forwarding a new study; a modality sending the same study UID.
  const ReceivedInstance new_study = Received("9.9.9", "PACS");
  EXPECT_FALSE(inbox_.Take(new_study).has_value());
  EXPECT_FALSE(inbox_.Take(Received("1.2.3", "CT1")).has_value());
  // A move someone else asked for.
  EXPECT_FALSE(inbox_.Take(Received("1.2.3", "CT1", "WORKSTATION")).has_value());
  EXPECT_TRUE(fs::exists(new_study.file)) << "left where it was";
  EXPECT_TRUE(expected->files().empty());
}

TEST_F(MoveInboxTest, RefusesAMoveForUsThatNoRetrieveAwaits) {
  const ReceivedInstance late = Received("1.2.3", "PACS", "CONDUIT");
  std::optional<Status> taken = inbox_.Take(late);
  ASSERT_TRUE(taken.has_value()) << "never routed as a new study";
  EXPECT_EQ(taken->code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(late.file));
  // Nor once its retrieve has ended; for a while, a late copy from the PACS that does not
  // name us is refused too. Other studies from the PACS are not.
  inbox_.Expect(StudyUid("1.2.3"), AeTitle("PACS"), retrieve_dir()).reset();
  EXPECT_EQ(inbox_.Take(Received("1.2.3", "PACS", "CONDUIT"))->code(),
            StatusCode::kFailedPrecondition);
  const ReceivedInstance late_copy = Received("1.2.3", "PACS");
  taken = inbox_.Take(late_copy);
  ASSERT_TRUE(taken.has_value()) << "not routed as a new study";
  EXPECT_EQ(taken->code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(late_copy.file));
  EXPECT_FALSE(inbox_.Take(Received("4.5.6", "PACS")).has_value());
  EXPECT_FALSE(inbox_.Take(Received("1.2.3", "CT1")).has_value()) << "a modality, not the PACS";
}

TEST_F(MoveInboxTest, AfterTheLingerTheStudyIsOrdinaryAgain) {
  MoveInbox brief(AeTitle("CONDUIT"), std::chrono::milliseconds(50));
  brief.Expect(StudyUid("1.2.3"), AeTitle("PACS"), retrieve_dir()).reset();
  EXPECT_TRUE(brief.Take(Received("1.2.3", "PACS")).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(brief.Take(Received("1.2.3", "PACS")).has_value())
      << "the PACS forwarding the study later is ingested as usual";
}

TEST_F(MoveInboxTest, TwoRetrievesOfOneStudyEachGetOneCopyOfEveryInstance) {
  const fs::path other_dir = dir_.path() / "other";
  fs::create_directories(other_dir);
  auto first = inbox_.Expect(StudyUid("1.2.3"), AeTitle("PACS"), retrieve_dir());
  auto second = inbox_.Expect(StudyUid("1.2.3"), AeTitle("PACS"), other_dir);
  // The PACS sends the study once per C-MOVE, the copies interleaved.
  for (const char* sop : {"1.2.3.1", "1.2.3.2", "1.2.3.1", "1.2.3.2"}) {
    std::optional<Status> taken = inbox_.Take(Received("1.2.3", "PACS", "", sop));
    ASSERT_TRUE(taken.has_value() && taken->ok());
  }
  // A third copy (a PACS retrying a sub-operation) is dropped, not ingested.
  const ReceivedInstance again = Received("1.2.3", "PACS", "", "1.2.3.1");
  std::optional<Status> taken = inbox_.Take(again);
  ASSERT_TRUE(taken.has_value() && taken->ok());
  EXPECT_FALSE(fs::exists(again.file));
  ASSERT_EQ(first->files().size(), 2u);
  ASSERT_EQ(second->files().size(), 2u);
  EXPECT_EQ(second->files()[0].parent_path(), other_dir);
}

}  // namespace
}  // namespace conduit
