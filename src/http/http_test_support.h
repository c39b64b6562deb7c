// Test support for the HTTP front end's tests: pieces several tests need the same way.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/config.h"
#include "core/job_token.h"
#include "core/metrics.h"
#include "dicom/instance_meta.h"
#include "dicom/test_support.h"
#include "http/dicomweb_context.h"
#include "http/dicomweb_read.h"
#include "store/received_instance.h"
#include "store/spool.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit::testing {

// A JobResultSink for tests that serve reads only: every result is refused
// (kFailedPrecondition), and the file it came in is left alone.
class RefusingJobResultSink : public JobResultSink {
 public:
  Status OnJobResult(JobId, const ReceivedInstance&) override {
    return FailedPrecondition("this test takes no results");
  }
  Status OnUnreadableJobResult(JobId, const std::filesystem::path&, const std::string&) override {
    return FailedPrecondition("this test takes no results");
  }
};

// A fixture for the DICOMweb read resources (WADO-RS, QIDO-RS, rendered): ServeDicomwebRead
// on GET /dicom-web/* of a server on 127.0.0.1, over a real spool and SQLite index in a
// temporary folder, with a fake clock. Tests store instances with IngestFile and read them
// back with Get.
class DicomwebReadFixture : public ::testing::Test {
 protected:
  DicomwebReadFixture()
      : spool_(std::move(Spool::Open(SpoolOptions{tmp_.path() / "spool", 0}).value())),
        index_(std::move(OpenSqliteIndex(tmp_.path() / "index.sqlite").value())),
        tokens_(std::move(JobTokens::FromSecret(std::string(32, 'k')).value())),
        sink_(tmp_.path() / "sink"),
        ctx_{config_, *index_, *spool_, sink_, results_, tokens_, metrics_, clock_} {
    server_.Get(R"(/dicom-web/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      ServeDicomwebRead(ctx_, req, res, OriginalsOpenedBy::kNoTokenConfigured);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~DicomwebReadFixture() override {
    server_.stop();
    thread_.join();
  }

  // Stores `file` (left in place) as ingest does: a spool commit, then an index row with its
  // attributes and audit event. The clock then moves on a second.
  void IngestFile(const std::filesystem::path& file) {
    auto meta = ReadInstanceMeta(file);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    const std::filesystem::path incoming = spool_->NewIncomingPath();
    std::filesystem::copy_file(file, incoming);
    Receipt receipt;
    receipt.calling_ae = AeTitle("MODALITY");
    receipt.received_at = clock_.Now();
    auto stored = StoreReceivedInstance(*spool_, *index_, incoming, *meta, receipt);
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    clock_.Advance(std::chrono::seconds(1));
  }

  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(120, 0);
    return client.Get(path, headers);
  }

  TempDir tmp_;
  Config config_;
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  JobTokens tokens_;
  CommittingSink sink_;
  RefusingJobResultSink results_;
  DicomwebContext ctx_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace conduit::testing
