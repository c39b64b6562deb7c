#include "dicomweb_tool_sim/study_inbox.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <random>

namespace conduit::tools {
namespace {

using namespace std::chrono_literals;

class StudyInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("dwsim-inbox-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(root_ / "tmp");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::filesystem::path root_;
  FakeClock clock_;
};

TEST(ParseChunkTest, AcceptsIOfNAndRefusesTheRest) {
  ASSERT_TRUE(ParseChunk("2/3").ok());
  EXPECT_EQ(*ParseChunk("2/3"), std::make_pair(2, 3));
  for (const char* bad : {"", "3", "0/2", "3/2", "a/2", "1/", "1/2x", "-1/2"}) {
    EXPECT_FALSE(ParseChunk(bad).ok()) << bad;
  }
}

TEST_F(StudyInboxTest, QuietStudyCompletesOnlyAfterTheQuietPeriod) {
  StudyInbox inbox(root_ / "inputs", clock_, 500ms);
  StudyInbox::RequestKeys keys;
  std::filesystem::path file = root_ / "tmp" / "a.part";
  std::ofstream(file) << "a";
  InstanceInfo info{"1.2.3", "1.2.3.1", "1.2.3.1.1", "1.2.840.10008.5.1.4.1.1.2", "CT", "1", {}};
  ASSERT_TRUE(inbox.Add(DeliveryHeaders{}, info, file, keys).ok());
  EXPECT_TRUE(inbox.TakeQuiet().empty()) << "request still in flight";
  EXPECT_TRUE(inbox.EndRequest(DeliveryHeaders{}, keys).empty());
  clock_.Advance(400ms);
  EXPECT_TRUE(inbox.TakeQuiet().empty()) << "quiet for 400 ms of 500";
  clock_.Advance(100ms);
  std::vector<CompletedStudy> done = inbox.TakeQuiet();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].study_uid, "1.2.3");
  ASSERT_EQ(done[0].instances.size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(done[0].instances[0].path));
  EXPECT_EQ(done[0].instances[0].path.parent_path(), done[0].dir);
  EXPECT_EQ(done[0].dir.filename().string().find("1.2.3"), std::string::npos)
      << "folder names carry no UID";
  EXPECT_EQ(inbox.pending(), 0u);
}

TEST_F(StudyInboxTest, ChunkedJobCompletesWhenEveryChunkArrivedWhateverTheOrder) {
  StudyInbox inbox(root_ / "inputs", clock_, 500ms);
  for (int chunk : {2, 1, 3}) {
    DeliveryHeaders headers;
    headers.job = "job-7";
    headers.chunk_index = chunk;
    headers.chunk_count = 3;
    headers.results_url = "http://127.0.0.1:1/jobs/job-7";
    headers.results_token = "t" + std::to_string(chunk);
    StudyInbox::RequestKeys keys;
    std::filesystem::path file = root_ / "tmp" / "p.part";
    std::ofstream(file) << chunk;
    InstanceInfo info{
        "1.2.3", "1.2.3.1", "1.2.3.1." + std::to_string(chunk), "1.2.840.10008.5.1.4.1.1.2", "CT",
        "1",     {}};
    ASSERT_TRUE(inbox.Add(headers, info, file, keys).ok());
    clock_.Advance(10s);
    EXPECT_TRUE(inbox.TakeQuiet().empty()) << "chunked jobs do not use the quiet timer";
    std::vector<CompletedStudy> done = inbox.EndRequest(headers, keys);
    if (chunk != 3) {
      EXPECT_TRUE(done.empty()) << "after chunk " << chunk;
      continue;
    }
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].job, "job-7");
    EXPECT_EQ(done[0].instances.size(), 3u);
    EXPECT_EQ(done[0].results_token, "t3") << "the latest token wins";
    EXPECT_EQ(done[0].results_url, "http://127.0.0.1:1/jobs/job-7");
  }
}

TEST_F(StudyInboxTest, ResentInstanceReplacesTheEarlierCopy) {
  StudyInbox inbox(root_ / "inputs", clock_, 500ms);
  StudyInbox::RequestKeys keys;
  InstanceInfo info{"1.2.3", "1.2.3.1", "1.2.3.1.1", "1.2.840.10008.5.1.4.1.1.2", "CT", "1", {}};
  for (int i = 0; i < 2; ++i) {
    std::filesystem::path file = root_ / "tmp" / "x.part";
    std::ofstream(file) << "copy" << i;
    ASSERT_TRUE(inbox.Add(DeliveryHeaders{}, info, file, keys).ok());
  }
  (void)inbox.EndRequest(DeliveryHeaders{}, keys);
  clock_.Advance(1s);
  std::vector<CompletedStudy> done = inbox.TakeQuiet();
  ASSERT_EQ(done.size(), 1u);
  ASSERT_EQ(done[0].instances.size(), 1u);
  std::ifstream in(done[0].instances[0].path);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "copy1");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(done[0].dir),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(StudyInboxTest, WithoutJobInstancesAreGroupedByStudy) {
  StudyInbox inbox(root_ / "inputs", clock_, 500ms);
  StudyInbox::RequestKeys keys;
  int n = 0;
  for (const char* study : {"1.2.3", "1.2.4", "1.2.3"}) {
    std::filesystem::path file = root_ / "tmp" / "y.part";
    std::ofstream(file) << study;
    InstanceInfo info{study,
                      std::string(study) + ".1",
                      std::string(study) + ".9." + std::to_string(++n),
                      "1.2.840.10008.5.1.4.1.1.2",
                      "CT",
                      "1",
                      {}};
    ASSERT_TRUE(inbox.Add(DeliveryHeaders{}, info, file, keys).ok());
  }
  (void)inbox.EndRequest(DeliveryHeaders{}, keys);
  clock_.Advance(1s);
  std::vector<CompletedStudy> done = inbox.TakeQuiet();
  ASSERT_EQ(done.size(), 2u);
  size_t total = done[0].instances.size() + done[1].instances.size();
  EXPECT_EQ(total, 3u);
  EXPECT_NE(done[0].dir, done[1].dir);
}

}  // namespace
}  // namespace conduit::tools
