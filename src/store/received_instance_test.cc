#include "store/received_instance.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

InstanceMeta CtMeta() {
  InstanceMeta meta;
  meta.study_uid = StudyUid("1.2.826.0.1.3680043.10.1.1");
  meta.series_uid = SeriesUid("1.2.826.0.1.3680043.10.1.1.1");
  meta.sop_instance_uid = SopInstanceUid("1.2.826.0.1.3680043.10.1.1.1.1");
  meta.sop_class_uid = SopClassUid(testing::kCtImageStorage);
  meta.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  meta.patient_id = "PAT-1";
  meta.patient_name = "TEST^PATIENT";
  meta.accession_number = "ACC1";
  meta.study_date = "20240102";
  meta.study_description = "CT CHEST";
  meta.modality = "CT";
  meta.series_description = "AXIAL";
  meta.body_part = "CHEST";
  meta.series_number = 3;
  meta.instance_number = 7;
  meta.attributes = {{"Modality", "CT"}, {"BodyPartExamined", "CHEST"}};
  return meta;
}

class ReceivedInstanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spool = Spool::Open({tmp_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    spool_ = std::move(spool).value();
    auto index = OpenSqliteIndex(tmp_.path() / "index" / "conduit.db");
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
  }

  // An incoming file of `bytes` bytes, as a front end leaves it before the commit.
  fs::path Incoming(size_t bytes) {
    const fs::path file = spool_->NewIncomingPath();
    std::ofstream(file, std::ios::binary) << std::string(bytes, 'x');
    return file;
  }

  testing::TempDir tmp_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  const TimePoint at_ = TimePoint{} + std::chrono::hours(1000);
};

TEST(ReceivedInstanceRecordTest, CarriesEveryFieldOfTheMetadata) {
  const InstanceMeta meta = CtMeta();
  const TimePoint at = TimePoint{} + std::chrono::seconds(42);
  const InstanceRecord r = ReceivedInstanceRecord(meta, "key1", 123, AeTitle("MODALITY"), at);
  EXPECT_EQ(r.study_uid, meta.study_uid);
  EXPECT_EQ(r.series_uid, meta.series_uid);
  EXPECT_EQ(r.sop_instance_uid, meta.sop_instance_uid);
  EXPECT_EQ(r.sop_class_uid, meta.sop_class_uid);
  EXPECT_EQ(r.transfer_syntax_uid, meta.transfer_syntax_uid);
  EXPECT_EQ(r.spool_key, "key1");
  EXPECT_EQ(r.size_bytes, 123u);
  EXPECT_EQ(r.calling_ae.str(), "MODALITY");
  EXPECT_EQ(r.received_at, at);
  EXPECT_EQ(r.patient_id, meta.patient_id);
  EXPECT_EQ(r.patient_name, meta.patient_name);
  EXPECT_EQ(r.accession_number, meta.accession_number);
  EXPECT_EQ(r.study_date, meta.study_date);
  EXPECT_EQ(r.study_description, meta.study_description);
  EXPECT_EQ(r.modality, meta.modality);
  EXPECT_EQ(r.series_description, meta.series_description);
  EXPECT_EQ(r.body_part, meta.body_part);
  EXPECT_EQ(r.series_number, 3);
  EXPECT_EQ(r.instance_number, 7);
  EXPECT_EQ(r.attributes, meta.attributes);
}

TEST_F(ReceivedInstanceTest, CommitsTheFileAndRecordsItWithItsAuditEvent) {
  const InstanceMeta meta = CtMeta();
  Receipt receipt;
  receipt.calling_ae = AeTitle("MODALITY");
  receipt.received_at = at_;
  receipt.actor = "MODALITY";
  receipt.detail = {{"protocol", "DIMSE"}};
  auto stored = StoreReceivedInstance(*spool_, *index_, Incoming(100), meta, receipt);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(stored->outcome, PutOutcome::kInserted);
  EXPECT_EQ(stored->size_bytes, 100u);
  EXPECT_EQ(fs::file_size(spool_->PathOf(stored->spool_key)), 100u) << "the bytes are spooled";

  auto found = index_->FindInstance(meta.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->spool_key, stored->spool_key);
  EXPECT_EQ((*found)->size_bytes, 100u);
  EXPECT_EQ((*found)->calling_ae.str(), "MODALITY");
  EXPECT_EQ((*found)->patient_name, meta.patient_name);

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  const AuditEvent& e = audit->front();
  EXPECT_EQ(e.action, "receive");
  EXPECT_EQ(e.outcome, "success");
  EXPECT_EQ(e.actor, "MODALITY");
  EXPECT_EQ(e.study_ref, StudyRef(meta.study_uid));
  EXPECT_EQ(e.at, at_);
  EXPECT_EQ(nlohmann::json::parse(e.detail),
            (nlohmann::json{{"protocol", "DIMSE"},
                            {"sop_class", testing::kCtImageStorage},
                            {"transfer_syntax", "1.2.840.10008.1.2.1"},
                            {"bytes", 100}}));
  EXPECT_EQ(e.detail.find("PAT-1"), std::string::npos) << "no patient identifier in the audit";
}

TEST_F(ReceivedInstanceTest, ResentInstanceIsADuplicateStoredUnderItsNewBytes) {
  const InstanceMeta meta = CtMeta();
  Receipt receipt;
  receipt.calling_ae = AeTitle("conduit-prior-fetch");
  receipt.received_at = at_;
  receipt.action = "prior_fetched";
  receipt.actor = "PACS";
  receipt.job_id = JobId{7};
  ASSERT_TRUE(StoreReceivedInstance(*spool_, *index_, Incoming(10), meta, receipt).ok());
  auto again = StoreReceivedInstance(*spool_, *index_, Incoming(20), meta, receipt);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->outcome, PutOutcome::kDuplicate);
  auto found = index_->FindInstance(meta.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->size_bytes, 20u);
  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ(audit->front().action, "prior_fetched");
  EXPECT_EQ(audit->front().job_id.value, 7);
}

TEST_F(ReceivedInstanceTest, MissingIncomingFileStoresNothing) {
  Receipt receipt;
  receipt.received_at = at_;
  auto stored =
      StoreReceivedInstance(*spool_, *index_, spool_->NewIncomingPath(), CtMeta(), receipt);
  EXPECT_FALSE(stored.ok());
  auto found = index_->FindInstance(CtMeta().sop_instance_uid);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_TRUE(index_->ListAudit(10, 0)->empty());
}

}  // namespace
}  // namespace conduit
