#include "pipeline/transfer_guard.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dicom/test_support.h"
#include "store/sqlite_index.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using testing::CtSpec;

constexpr char kStudy[] = "1.2.826.0.1.3680043.10.1137.77";
constexpr char kSeries[] = "1.2.826.0.1.3680043.10.1137.77.1";

PseudonymKey Key(uint8_t fill) {
  PseudonymKey key;
  key.bytes.assign(32, fill);
  key.id = "key-" + std::to_string(fill);
  return key;
}

std::string Get(const fs::path& file, const DcmTagKey& key) {
  DcmFileFormat ff;
  EXPECT_TRUE(ff.loadFile(file.c_str()).good()) << file;
  OFString value;
  ff.getDataset()->findAndGetOFStringArray(key, value, /*searchIntoSub=*/true);
  return value.c_str();
}

class TransferGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spool = Spool::Open(SpoolOptions{dir_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok());
    spool_ = std::move(*spool);
    auto index = OpenSqliteIndex(dir_.path() / "index.sqlite");
    ASSERT_TRUE(index.ok());
    index_ = std::move(*index);
    for (int i = 1; i <= 3; ++i) {
      CtSpec spec;
      spec.study_uid = kStudy;
      spec.series_uid = kSeries;
      spec.sop_instance_uid = std::string(kSeries) + "." + std::to_string(i);
      spec.instance_number = i;
      const fs::path incoming = spool_->NewIncomingPath();
      testing::WriteCtImage(incoming, spec);
      auto key = spool_->Commit(incoming, SopInstanceUid(spec.sop_instance_uid));
      ASSERT_TRUE(key.ok());
      ASSERT_TRUE(testing::PutTestInstance(*index_, kStudy, kSeries, spec.sop_instance_uid,
                                           clock_.Now(), *key)
                      .ok());
      inputs_.push_back(spool_->PathOf(*key));
      keys_.push_back(*key);
    }
    job_.study_uid = StudyUid(kStudy);
    job_.route = "ct";
    job_.tool = "remote";
    job_.state = JobState::kSending;
    auto id = index_->CreateJob(job_, AuditEvent{clock_.Now(), "assemble", "success", "test",
                                                 StudyRef(job_.study_uid), JobId{}, "{}", ""});
    ASSERT_TRUE(id.ok());
    job_.id = *id;
  }

  std::unique_ptr<TransferGuard> Guard(uint8_t key, DeidSettings settings = {}) {
    settings.policy_hash = "feedfacefeedface";
    std::map<std::string, DeidSettings> tools{{"remote", settings}};
    return std::make_unique<TransferGuard>(*index_, *spool_, clock_, metrics_,
                                           Pseudonymiser(Key(key)), tools);
  }

  // A result the tool made on the pseudonymised study: a new object referencing `referenced`.
  fs::path ResultFrom(const fs::path& pseudonymised_input, const std::string& referenced) {
    const fs::path result = dir_.path() / "result.dcm";
    DcmFileFormat ff;
    EXPECT_TRUE(ff.loadFile(pseudonymised_input.c_str()).good());
    DcmDataset& ds = *ff.getDataset();
    ds.putAndInsertString(DCM_SOPInstanceUID, "2.25.4242");
    ds.putAndInsertString(DCM_SeriesInstanceUID, "2.25.4243");
    DcmItem* ref = nullptr;
    EXPECT_TRUE(ds.findOrCreateSequenceItem(DCM_ReferencedImageSequence, ref, -2).good());
    ref->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
    ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, referenced.c_str());
    EXPECT_TRUE(ff.saveFile(result.c_str(), EXS_LittleEndianExplicit).good());
    return result;
  }

  std::vector<AuditEvent> AuditOf(const std::string& action) {
    std::vector<AuditEvent> out;
    auto events = index_->ListAudit(100, 0);
    EXPECT_TRUE(events.ok());
    for (auto& e : *events)
      if (e.action == action) out.push_back(e);
    return out;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  std::vector<fs::path> inputs_;
  std::vector<std::string> keys_;
  JobRecord job_;
};

TEST_F(TransferGuardTest, DeidentifiesRecordsTheCrosswalkAndAuditsBeforeAnythingLeaves) {
  auto guard = Guard(1);
  ASSERT_TRUE(guard->Deidentifies("remote"));
  EXPECT_FALSE(guard->Deidentifies("local"));
  auto sent = guard->Prepare(job_, inputs_, dir_.path() / "job" / "deidentified");
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  ASSERT_EQ(sent->size(), 3u);
  const std::string pseudo_study = Get((*sent)[0], DCM_StudyInstanceUID);
  EXPECT_NE(pseudo_study, kStudy);
  auto originals = index_->FindOriginals({pseudo_study, Get((*sent)[0], DCM_PatientID)});
  ASSERT_TRUE(originals.ok());
  EXPECT_EQ((*originals)[pseudo_study], kStudy);
  EXPECT_EQ((*originals)[Get((*sent)[0], DCM_PatientID)], "PID0001");

  auto audit = AuditOf("deidentify");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].outcome, "success");
  EXPECT_EQ(audit[0].policy_hash, "feedfacefeedface");
  EXPECT_EQ(audit[0].job_id.value, job_.id.value);
  auto detail = nlohmann::json::parse(audit[0].detail);
  EXPECT_EQ(detail["deidentified"], 3);
  EXPECT_GT(detail["actions"]["U"].get<int>(), 0);
  EXPECT_EQ(audit[0].detail.find(kStudy), std::string::npos);
  EXPECT_EQ(audit[0].detail.find("PID0001"), std::string::npos);
}

TEST_F(TransferGuardTest, ATransferTheGuardDoesNotCoverPassesUnchanged) {
  job_.tool = "local";
  auto sent = Guard(1)->Prepare(job_, inputs_, dir_.path() / "unused");
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(*sent, inputs_);
}

TEST_F(TransferGuardTest, AJobWhoseEveryInputIsRefusedFailsWithTheReason) {
  DeidSettings strict;
  strict.burned_in.cleaning.clear();
  for (const auto& input : inputs_) {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(input.c_str()).good());
    ff.loadAllDataIntoMemory();
    ff.getDataset()->putAndInsertString(DCM_BurnedInAnnotation, "YES");
    ASSERT_TRUE(ff.saveFile(input.c_str(), EXS_LittleEndianExplicit).good());
  }
  auto sent = Guard(1, strict)->Prepare(job_, inputs_, dir_.path() / "job" / "deidentified");
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(sent.status().message().find("Burned In Annotation"), std::string::npos);
  auto audit = AuditOf("deidentify");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].outcome, "failure");
}

TEST_F(TransferGuardTest, ResultsMadeBeforeAKeyRotationAreStillReidentified) {
  auto before = Guard(1)->Prepare(job_, inputs_, dir_.path() / "a");
  ASSERT_TRUE(before.ok());
  const fs::path result = ResultFrom((*before)[1], Get((*before)[1], DCM_SOPInstanceUID));

  // The trust rotates the key: new transfers get new pseudonyms, and a result of the earlier
  // transfer still maps back through the crosswalk.
  auto rotated = Guard(2);
  auto after = rotated->Prepare(job_, inputs_, dir_.path() / "b");
  ASSERT_TRUE(after.ok());
  EXPECT_NE(Get((*after)[0], DCM_StudyInstanceUID), Get((*before)[0], DCM_StudyInstanceUID));

  auto original = rotated->OriginalStudyOf(result);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->value_or(StudyUid("")).str(), kStudy);
  ASSERT_TRUE(rotated->Reidentify(job_, result).ok());
  EXPECT_EQ(Get(result, DCM_StudyInstanceUID), kStudy);
  EXPECT_EQ(Get(result, DCM_ReferencedSOPInstanceUID), std::string(kSeries) + ".2");
  EXPECT_EQ(Get(result, DCM_PatientID), "PID0001");
  EXPECT_EQ(AuditOf("reidentify").size(), 1u);
}

TEST_F(TransferGuardTest, AResultCitingAPriorStudyIsReidentifiedOntoThePriorsOriginalUids) {
  // A prior of the same patient, sent with the job as the prior fetcher adds it.
  const std::string prior_study = "1.2.826.0.1.3680043.10.1137.66";
  CtSpec spec;
  spec.study_uid = prior_study;
  spec.series_uid = prior_study + ".1";
  spec.sop_instance_uid = prior_study + ".1.1";
  const fs::path incoming = spool_->NewIncomingPath();
  testing::WriteCtImage(incoming, spec);
  auto key = spool_->Commit(incoming, SopInstanceUid(spec.sop_instance_uid));
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(testing::PutTestInstance(*index_, spec.study_uid, spec.series_uid,
                                       spec.sop_instance_uid, clock_.Now(), *key)
                  .ok());
  std::vector<fs::path> inputs = inputs_;
  inputs.push_back(spool_->PathOf(*key));

  auto guard = Guard(1);
  auto sent = guard->Prepare(job_, inputs, dir_.path() / "a");
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  ASSERT_EQ(sent->size(), 4u);
  const fs::path& prior_sent = sent->back();
  EXPECT_EQ(Get(prior_sent, DCM_PatientID), Get((*sent)[0], DCM_PatientID))
      << "one pseudonymous patient for the study and its prior";
  const std::string pseudo_prior_study = Get(prior_sent, DCM_StudyInstanceUID);
  EXPECT_NE(pseudo_prior_study, prior_study);
  EXPECT_NE(pseudo_prior_study, Get((*sent)[0], DCM_StudyInstanceUID));

  // The tool's result on the current study cites the prior's image and study ("compared with").
  const fs::path result = ResultFrom((*sent)[0], Get(prior_sent, DCM_SOPInstanceUID));
  {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(result.c_str()).good());
    DcmItem* study_ref = nullptr;
    ASSERT_TRUE(ff.getDataset()
                    ->findOrCreateSequenceItem(DCM_ReferencedStudySequence, study_ref, -2)
                    .good());
    study_ref->putAndInsertString(DCM_ReferencedSOPClassUID,
                                  UID_RETIRED_DetachedStudyManagementSOPClass);
    study_ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, pseudo_prior_study.c_str());
    ff.loadAllDataIntoMemory();
    ASSERT_TRUE(ff.saveFile(result.c_str(), EXS_LittleEndianExplicit).good());
  }
  Status st = guard->Reidentify(job_, result);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Get(result, DCM_StudyInstanceUID), kStudy);
  EXPECT_EQ(Get(result, DCM_PatientID), "PID0001");
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(result.c_str()).good());
  DcmItem* image_ref = nullptr;
  ASSERT_TRUE(
      ff.getDataset()->findAndGetSequenceItem(DCM_ReferencedImageSequence, image_ref).good());
  OFString cited;
  image_ref->findAndGetOFString(DCM_ReferencedSOPInstanceUID, cited);
  EXPECT_EQ(cited.c_str(), spec.sop_instance_uid) << "the prior's image, by its original UID";
  DcmItem* study_ref = nullptr;
  ASSERT_TRUE(
      ff.getDataset()->findAndGetSequenceItem(DCM_ReferencedStudySequence, study_ref).good());
  study_ref->findAndGetOFString(DCM_ReferencedSOPInstanceUID, cited);
  EXPECT_EQ(cited.c_str(), prior_study) << "the prior study, by its original UID";
}

TEST_F(TransferGuardTest, AResultForAnotherStudyIsRefused) {
  auto guard = Guard(1);
  auto sent = guard->Prepare(job_, inputs_, dir_.path() / "a");
  ASSERT_TRUE(sent.ok());
  const fs::path result = ResultFrom((*sent)[0], Get((*sent)[0], DCM_SOPInstanceUID));
  JobRecord other = job_;
  other.study_uid = StudyUid("1.2.3.999");
  ASSERT_TRUE(testing::PutTestInstance(*index_, "1.2.3.999", "1.2.3.999.1", "1.2.3.999.1.1",
                                       clock_.Now(), keys_[0])
                  .ok());
  Status st = guard->Reidentify(other, result);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  auto audit = AuditOf("reidentify");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].outcome, "failure");
}

}  // namespace
}  // namespace conduit
