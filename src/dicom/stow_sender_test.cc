// StowFiles against a real HTTP server on 127.0.0.1 that reads the multipart bodies back and
// answers as PACSs do: all stored, some failed for each kind of reason, busy, refusing the
// token, unreachable. Also the split of files into requests.
#include "dicom/stow_sender.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "testing/fake_stow_server.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::FakeStowServer;
using testing::SeenStowRequest;

class StowSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) {
      files_.push_back(dir_.path() / ("result-" + std::to_string(i) + ".dcm"));
      // Bytes that look like a multipart delimiter must pass through untouched.
      contents_.push_back(std::string(1000 + i * 300, static_cast<char>('a' + i)) +
                          "\r\n--not-the-boundary\r\n" + std::string(1, '\0'));
      std::ofstream(files_.back(), std::ios::binary) << contents_.back();
      uids_.push_back("1.2.826.0.1.3680043.9.7.300." + std::to_string(i));
    }
    target_.url = pacs_.url();
    target_.timeout = 10s;
    target_.setting = "destinations[pacs].dicomweb";
  }

  testing::TempDir dir_;
  FakeStowServer pacs_;
  StowTarget target_;
  std::vector<fs::path> files_;
  std::vector<std::string> contents_;
  std::vector<std::string> uids_;
};

TEST_F(StowSenderTest, StoresEveryFileInOneRequestWithTheToken) {
  const fs::path token = dir_.path() / "pacs.token";
  std::ofstream(token) << "pacs-secret-token\n";
  target_.auth_token_file = token;
  pacs_.Then({200, uids_, {}});
  Result<std::vector<Status>> sent = StowFiles(target_, files_, uids_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  ASSERT_EQ(sent->size(), 4u);
  for (const Status& st : *sent) EXPECT_TRUE(st.ok()) << st.ToString();
  const std::vector<SeenStowRequest> seen = pacs_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].parse.ok()) << seen[0].parse.ToString();
  EXPECT_EQ(seen[0].parts, contents_) << "byte-exact, in order";
  EXPECT_EQ(seen[0].authorization, "Bearer pacs-secret-token");
}

TEST_F(StowSenderTest, ReadsEachInstancesFateFromTheAnswer) {
  // Stored; already held (0x0111); out of resources (0xA700); refused (0xC000)... and one
  // the answer leaves out, so its fate is unknown.
  pacs_.Then({202, {uids_[0]}, {{uids_[1], 0x0111}, {uids_[2], 0xA700}}});
  Result<std::vector<Status>> sent = StowFiles(target_, files_, uids_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_TRUE((*sent)[0].ok());
  EXPECT_TRUE((*sent)[1].ok()) << "held already counts as stored";
  EXPECT_EQ((*sent)[2].code(), StatusCode::kUnavailable);
  EXPECT_NE((*sent)[2].message().find("0xA700 (out of resources)"), std::string::npos)
      << (*sent)[2].message();
  EXPECT_EQ((*sent)[3].code(), StatusCode::kUnavailable);
  EXPECT_NE((*sent)[3].message().find("does not say"), std::string::npos) << (*sent)[3].message();

  pacs_.Then(
      {409, {}, {{uids_[0], 0xC000}, {uids_[1], 0xA900}, {uids_[2], 0x0122}, {uids_[3], 0x0111}}});
  sent = StowFiles(target_, files_, uids_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*sent)[i].code(), StatusCode::kInvalidArgument) << (*sent)[i].ToString();
  }
  EXPECT_NE((*sent)[2].message().find("0x0122 (SOP class not supported)"), std::string::npos);
  EXPECT_TRUE((*sent)[3].ok());
}

TEST_F(StowSenderTest, AfterA200WhatTheAnswerDoesNotNameFailedWasStored) {
  pacs_.Then({200, {uids_[0]}, {{uids_[1], 0xC000}}});
  Result<std::vector<Status>> sent = StowFiles(target_, files_, uids_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_TRUE((*sent)[0].ok());
  EXPECT_EQ((*sent)[1].code(), StatusCode::kInvalidArgument) << "named failed, even in a 200";
  EXPECT_TRUE((*sent)[2].ok()) << (*sent)[2].ToString();
  EXPECT_TRUE((*sent)[3].ok()) << (*sent)[3].ToString();
}

TEST_F(StowSenderTest, PlainSuccessWithoutAListStoresAll) {
  pacs_.Then({200, {}, {}});
  pacs_.Then({200, {}, {}, "not json"});
  pacs_.Then({204, {}, {}});
  for (int round = 0; round < 3; ++round) {
    Result<std::vector<Status>> sent = StowFiles(target_, files_, uids_);
    ASSERT_TRUE(sent.ok()) << sent.status().ToString();
    for (const Status& st : *sent) EXPECT_TRUE(st.ok()) << round << ": " << st.ToString();
  }
}

TEST_F(StowSenderTest, SplitsBySizeAndStopsAfterAFailedRequest) {
  // Files of 1023, 1323, 1623 and 1923 bytes: any two exceed 2000, so each goes alone.
  target_.chunk_bytes = 2000;
  pacs_.Then({200, {uids_[0]}, {}});
  pacs_.Then({503, {}, {}});
  Result<std::vector<Status>> sent = StowFiles(target_, files_, uids_);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_TRUE((*sent)[0].ok());
  EXPECT_EQ((*sent)[1].code(), StatusCode::kUnavailable);
  EXPECT_NE((*sent)[1].message().find("HTTP 503"), std::string::npos) << (*sent)[1].message();
  EXPECT_EQ((*sent)[2].code(), StatusCode::kUnavailable);
  EXPECT_NE((*sent)[2].message().find("not sent"), std::string::npos) << (*sent)[2].message();
  EXPECT_EQ((*sent)[3].code(), StatusCode::kUnavailable);
  const std::vector<SeenStowRequest> seen = pacs_.requests();
  ASSERT_EQ(seen.size(), 2u) << "nothing sent after the failed request";
  EXPECT_EQ(seen[0].parts, std::vector<std::string>{contents_[0]});
  EXPECT_EQ(seen[1].parts, std::vector<std::string>{contents_[1]});
}

TEST_F(StowSenderTest, RequestFailuresSayWhatToDo) {
  pacs_.Then({401, {}, {}});
  Result<std::vector<Status>> sent = StowFiles(target_, {files_[0]}, {uids_[0]});
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ((*sent)[0].code(), StatusCode::kUnavailable) << "a token to fix, then a retry";
  EXPECT_NE((*sent)[0].message().find("destinations[pacs].dicomweb.auth_token_file"),
            std::string::npos)
      << (*sent)[0].message();

  pacs_.Then({400, {}, {}});
  sent = StowFiles(target_, {files_[0]}, {uids_[0]});
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ((*sent)[0].code(), StatusCode::kInvalidArgument);

  pacs_.Then({413, {}, {}});
  sent = StowFiles(target_, {files_[0]}, {uids_[0]});
  ASSERT_TRUE(sent.ok());
  EXPECT_NE((*sent)[0].message().find("chunk_bytes"), std::string::npos) << (*sent)[0].message();

  StowTarget nowhere = target_;
  nowhere.url = "http://127.0.0.1:9/dicom-web";  // discard: nothing listens
  sent = StowFiles(nowhere, {files_[0]}, {uids_[0]});
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ((*sent)[0].code(), StatusCode::kUnavailable) << (*sent)[0].ToString();
}

TEST_F(StowSenderTest, RefusesToSendWhatItCannotDescribe) {
  EXPECT_EQ(StowFiles(target_, files_, {uids_[0]}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(StowFiles(target_, {dir_.path() / "missing.dcm"}, {uids_[0]}).status().code(),
            StatusCode::kDataLoss);
  target_.auth_token_file = dir_.path() / "no-such.token";
  EXPECT_EQ(StowFiles(target_, files_, uids_).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(pacs_.requests().empty());
}

TEST(StowChunksTest, KeepsOrderAndPutsAnOversizedFileAlone) {
  struct Case {
    std::vector<uint64_t> sizes;
    uint64_t chunk_bytes;
    std::vector<std::pair<size_t, size_t>> expected;
  };
  const Case cases[] = {
      {{}, 100, {}},
      {{10, 20, 30}, 100, {{0, 3}}},
      {{60, 50, 40, 10}, 100, {{0, 1}, {1, 4}}},
      {{10, 500, 10}, 100, {{0, 1}, {1, 2}, {2, 3}}},
      {{50, 50, 50}, 100, {{0, 2}, {2, 3}}},
  };
  for (const Case& c : cases) {
    std::vector<std::pair<size_t, size_t>> got;
    for (const StowChunk& chunk : PlanStowChunks(c.sizes, c.chunk_bytes)) {
      got.emplace_back(chunk.begin, chunk.end);
    }
    EXPECT_EQ(got, c.expected);
  }
}

}  // namespace
}  // namespace conduit
