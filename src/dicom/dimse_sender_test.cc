#include "dicom/dimse_sender.h"

#include <gtest/gtest.h>

#include <chrono>

#include "dicom/dimse_listener.h"
#include "dicom/test_support.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;
using testing::CommittingSink;
using testing::CtSpec;
using testing::Process;
using testing::Syntax;
using testing::TempDir;

constexpr const char* kJpegLsLossless = "1.2.840.10008.1.2.4.80";

class DimseSenderTest : public ::testing::Test {
 protected:
  // Two uncompressed CT images and one JPEG-LS one, all of one series.
  std::vector<std::filesystem::path> MixedSeries() {
    auto files = testing::WriteCtSeries(dir_.path() / "send", 2, "1.2.826.0.1.3680043.10.20");
    CtSpec spec;
    spec.study_uid = "1.2.826.0.1.3680043.10.20";
    spec.series_uid = "1.2.826.0.1.3680043.10.20.1";
    spec.sop_instance_uid = "1.2.826.0.1.3680043.10.20.1.3";
    spec.instance_number = 3;
    spec.syntax = Syntax::kJpegLsLossless;
    files.push_back(dir_.path() / "send" / "ct3-jpegls.dcm");
    testing::WriteCtImage(files.back(), spec);
    return files;
  }

  static DicomPeer PeerAt(int port, const std::string& called = "PEER") {
    return DicomPeer{AeTitle("CONDUIT"), AeTitle(called), "127.0.0.1", port, 30s, {}};
  }

  // storescp on a free port writing into <dir>/<name>; extra options before the port.
  std::pair<std::unique_ptr<Process>, int> StartStorescp(const std::string& name,
                                                         std::vector<std::string> options) {
    const auto out = dir_.path() / name;
    std::filesystem::create_directories(out);
    const int port = testing::FreePort();
    std::vector<std::string> argv = {"storescp", "-aet", "PEER", "-od", out.string()};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(std::to_string(port));
    auto process = std::make_unique<Process>(argv);
    EXPECT_TRUE(testing::WaitForPort(port)) << "storescp did not start on " << port;
    return {std::move(process), port};
  }

  size_t FilesIn(const std::string& name) const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_.path() / name)) {
      ++n;
    }
    return n;
  }

  TempDir dir_;
};

TEST_F(DimseSenderTest, StoreFilesToConduitListenerKeepsEachFilesTransferSyntax) {
  CommittingSink sink(dir_.path() / "sink");
  DicomConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  auto listener = MakeDimseListener(config, sink);
  ASSERT_TRUE(listener->Start().ok());
  const auto files = MixedSeries();

  Result<std::vector<Status>> sent = StoreFiles(PeerAt(listener->port(), "CONDUIT"), files);

  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  ASSERT_EQ(sent->size(), 3u);
  for (const Status& s : *sent) EXPECT_TRUE(s.ok()) << s.ToString();
  const auto received = sink.instances();
  ASSERT_EQ(received.size(), 3u);
  for (size_t i = 0; i < files.size(); ++i) {
    Result<InstanceMeta> original = ReadInstanceMeta(files[i]);
    ASSERT_TRUE(original.ok());
    const auto match = std::find_if(received.begin(), received.end(), [&](const auto& r) {
      return r.meta.sop_instance_uid == original->sop_instance_uid;
    });
    ASSERT_NE(match, received.end()) << files[i];
    EXPECT_EQ(match->meta.transfer_syntax_uid, original->transfer_syntax_uid) << files[i];
    EXPECT_EQ(match->association.calling_ae.str(), "CONDUIT");
  }
  listener->Stop();
}

TEST_F(DimseSenderTest, StoreFilesToStorescpAcceptingAllSyntaxes) {
  auto [storescp, port] = StartStorescp("all", {"+xa"});
  const auto files = MixedSeries();

  Result<std::vector<Status>> sent = StoreFiles(PeerAt(port), files);

  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  for (const Status& s : *sent) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(FilesIn("all"), 3u);
}

TEST_F(DimseSenderTest, CompressedFileWithoutAcceptedContextIsFailedPrecondition) {
  // Plain storescp accepts only uncompressed syntaxes; Conduit never transcodes.
  auto [storescp, port] = StartStorescp("plain", {});
  const auto files = MixedSeries();

  Result<std::vector<Status>> sent = StoreFiles(PeerAt(port), files);

  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  ASSERT_EQ(sent->size(), 3u);
  EXPECT_TRUE((*sent)[0].ok()) << (*sent)[0].ToString();
  EXPECT_TRUE((*sent)[1].ok()) << (*sent)[1].ToString();
  EXPECT_EQ((*sent)[2].code(), StatusCode::kFailedPrecondition) << (*sent)[2].ToString();
  EXPECT_NE((*sent)[2].message().find(kJpegLsLossless), std::string::npos);
  EXPECT_EQ(FilesIn("plain"), 2u);
}

TEST_F(DimseSenderTest, UnreadableFileFailsAloneAndOthersAreSent) {
  auto [storescp, port] = StartStorescp("mixed", {});
  auto files = testing::WriteCtSeries(dir_.path() / "send", 2, "1.2.826.0.1.3680043.10.21");
  files.insert(files.begin() + 1, dir_.path() / "send" / "missing.dcm");

  Result<std::vector<Status>> sent = StoreFiles(PeerAt(port), files);

  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  ASSERT_EQ(sent->size(), 3u);
  EXPECT_TRUE((*sent)[0].ok());
  EXPECT_EQ((*sent)[1].code(), StatusCode::kNotFound);
  EXPECT_TRUE((*sent)[2].ok());
  EXPECT_EQ(FilesIn("mixed"), 2u);
}

TEST_F(DimseSenderTest, EchoToStorescp) {
  auto [storescp, port] = StartStorescp("echo", {});
  const Status echo = Echo(PeerAt(port));
  EXPECT_TRUE(echo.ok()) << echo.ToString();
}

TEST_F(DimseSenderTest, UnreachablePeerIsUnavailable) {
  const int port = testing::FreePort();  // nothing listens there
  DicomPeer peer = PeerAt(port);
  peer.timeout = 5s;

  const Status echo = Echo(peer);
  Result<std::vector<Status>> sent = StoreFiles(peer, MixedSeries());

  EXPECT_EQ(echo.code(), StatusCode::kUnavailable) << echo.ToString();
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), StatusCode::kUnavailable) << sent.status().ToString();
}

TEST_F(DimseSenderTest, RejectedAssociationIsUnavailable) {
  CommittingSink sink(dir_.path() / "sink");
  DicomConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.allowed_calling_aes = {"SOMEONE_ELSE"};
  auto listener = MakeDimseListener(config, sink);
  ASSERT_TRUE(listener->Start().ok());

  const Status echo = Echo(PeerAt(listener->port(), "CONDUIT"));

  EXPECT_EQ(echo.code(), StatusCode::kUnavailable) << echo.ToString();
  EXPECT_NE(echo.message().find("rejected"), std::string::npos) << echo.message();
  listener->Stop();
}

}  // namespace
}  // namespace conduit
