// Against a real storescp standing in for an AI tool's DICOM node.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "adapters/tool_adapter.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::StorescpPeer;
using testing::TempDir;
using testing::WriteTestDicom;

constexpr const char* kStudy = "1.2.826.0.1.3680043.9.7.100";
constexpr const char* kSeries = "1.2.826.0.1.3680043.9.7.100.1";
// A SOP class no storescp knows: its presentation context is rejected.
constexpr const char* kUnknownSopClass = "1.2.826.0.1.3680043.9.7.999.1";

class DimsePushAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_.path() / "inputs");
    for (int i = 1; i <= 3; ++i) {
      const fs::path file = tmp_.path() / "inputs" / (std::to_string(i) + ".dcm");
      ASSERT_TRUE(
          WriteTestDicom(file, kStudy, kSeries, std::string(kSeries) + "." + std::to_string(i))
              .ok());
      request_.inputs.push_back(file);
    }
    request_.job.id = JobId{3};
    request_.job.study_uid = StudyUid(kStudy);
    request_.work_dir = tmp_.path() / "work";
    request_.log_file = tmp_.path() / "job.log";
    tool_.name = "dimse-tool";
    tool_.kind = ToolKind::kDimse;
    tool_.ae_title = AeTitle("TOOL");
    tool_.host = "127.0.0.1";
    tool_.timeout = 30s;
  }

  TempDir tmp_;
  DispatchRequest request_;
  ToolConfig tool_;
};

TEST_F(DimsePushAdapterTest, SendsTheStudyAndAwaitsResults) {
  auto peer = StorescpPeer::Start(tmp_.path() / "received", "TOOL");
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  tool_.port = (*peer)->port();
  Result<DispatchOutcome> outcome =
      MakeDimsePushAdapter(tool_, AeTitle("CONDUIT"))->Dispatch(request_);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->results_pending);
  EXPECT_TRUE(outcome->result_files.empty());
  EXPECT_EQ((*peer)->WaitForReceived(3), 3);
}

TEST_F(DimsePushAdapterTest, ToolDownIsUnavailable) {
  tool_.port = testing::FreePort();  // nothing listens there
  tool_.timeout = 5s;
  Result<DispatchOutcome> outcome =
      MakeDimsePushAdapter(tool_, AeTitle("CONDUIT"))->Dispatch(request_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_TRUE(IsRetryable(outcome.status().code())) << outcome.status().ToString();
}

TEST_F(DimsePushAdapterTest, AssociationRefusedIsUnavailable) {
  auto peer = StorescpPeer::Start(tmp_.path() / "received", "TOOL", {"--refuse"});
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  tool_.port = (*peer)->port();
  Result<DispatchOutcome> outcome =
      MakeDimsePushAdapter(tool_, AeTitle("CONDUIT"))->Dispatch(request_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kUnavailable) << outcome.status().ToString();
}

TEST_F(DimsePushAdapterTest, RefusedInstanceFailsTheStepWithTheWorstStatus) {
  const fs::path odd = tmp_.path() / "inputs" / "odd.dcm";
  ASSERT_TRUE(
      WriteTestDicom(odd, kStudy, kSeries, std::string(kSeries) + ".99", kUnknownSopClass).ok());
  request_.inputs.push_back(odd);
  auto peer = StorescpPeer::Start(tmp_.path() / "received", "TOOL");
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  tool_.port = (*peer)->port();
  Result<DispatchOutcome> outcome =
      MakeDimsePushAdapter(tool_, AeTitle("CONDUIT"))->Dispatch(request_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_FALSE(IsRetryable(outcome.status().code())) << outcome.status().ToString();
  EXPECT_NE(outcome.status().message().find("1 of 4"), std::string::npos)
      << outcome.status().message();
}

}  // namespace
}  // namespace conduit
