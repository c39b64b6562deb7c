// Priors found on and fetched from a real Orthanc (the PACS) over DIMSE (C-FIND + C-GET; C-MOVE's
// refusals) and DICOMweb (QIDO-RS + WADO-RS), then de-identified with the current study under one
// pseudonymous patient.
#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "dicom/dimse_query_retrieve.h"
#include "dicom/instance_meta.h"
#include "dicom/test_support.h"
#include "pipeline/prior_fetcher_impl.h"
#include "pipeline/prior_test_support.h"
#include "pipeline/transfer_guard.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

constexpr char kPatient[] = "PRIORS-ORTHANC-1";
constexpr char kCurrent[] = "1.2.826.0.1.3680043.10.1137.950";
constexpr char kPrior2023[] = "1.2.826.0.1.3680043.10.1137.951";
constexpr char kPrior2021[] = "1.2.826.0.1.3680043.10.1137.952";
constexpr char kPrior2015[] = "1.2.826.0.1.3680043.10.1137.953";  // older than 5 years
constexpr char kMr2022[] = "1.2.826.0.1.3680043.10.1137.954";     // not comparable
constexpr char kOther2023[] = "1.2.826.0.1.3680043.10.1137.955";  // another patient
constexpr char kLater[] = "1.2.826.0.1.3680043.10.1137.956";      // after the current study

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    if (fs::exists(fs::path(dirs.substr(start, end - start)) / program)) return true;
    start = end + 1;
  }
  return false;
}

std::string Get(const fs::path& file, const DcmTagKey& key) {
  DcmFileFormat ff;
  EXPECT_TRUE(ff.loadFile(file.c_str()).good()) << file;
  OFString value;
  ff.getDataset()->findAndGetOFStringArray(key, value);
  return value.c_str();
}

class PriorFetchOrthancTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!OnPath("Orthanc")) return;
    root_ = new testing::TempDir();
    dicom_port_ = testing::FreePort();
    http_port_ = testing::FreePort();
    const fs::path db = root_->path() / "db";
    fs::create_directories(db);
    const nlohmann::json config = {
        {"Name", "priors-pacs"},
        {"StorageDirectory", db.string()},
        {"IndexDirectory", db.string()},
        {"DicomAet", "ORTHANC"},
        {"DicomPort", dicom_port_},
        {"HttpPort", http_port_},
        {"RemoteAccessAllowed", false},
        {"AuthenticationEnabled", false},
        {"DicomAlwaysAllowStore", true},
        {"DicomModalities",
         {{"conduit",
           {{"AET", "CONDUIT"},
            {"Host", "127.0.0.1"},
            {"Port", 1},
            {"AllowFind", true},
            {"AllowGet", true},
            {"AllowMove", true}}}}},  // to port 1: nobody listens
        {"Plugins", {"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"}},
        {"DicomWeb", {{"Enable", true}, {"Root", "/dicom-web/"}}},
    };
    const fs::path config_file = root_->path() / "orthanc.json";
    std::ofstream(config_file) << config.dump(2);
    orthanc_ = new testing::Process({"Orthanc", config_file.string()});
    ready_ = testing::WaitForPort(http_port_, std::chrono::seconds(60)) &&
             testing::WaitForPort(dicom_port_, std::chrono::seconds(60));
    if (!ready_) return;
    struct Spec {
      const char* uid;
      const char* date;
      const char* modality;
      const char* patient;
    };
    for (const Spec& s :
         {Spec{kCurrent, "20240310", "CT", kPatient}, Spec{kPrior2023, "20230105", "CT", kPatient},
          Spec{kPrior2021, "20210620", "CT", kPatient},
          Spec{kPrior2015, "20150101", "CT", kPatient}, Spec{kMr2022, "20220101", "MR", kPatient},
          Spec{kOther2023, "20230601", "CT", "SOMEONE-ELSE"},
          Spec{kLater, "20240401", "CT", kPatient}}) {
      auto files = testing::WritePatientStudy(root_->path() / "studies" / s.uid,
                                              {s.patient, s.uid, s.date, s.modality}, 2);
      std::vector<std::string> argv = {"storescu",
                                       "-aet",
                                       "MODALITY",
                                       "-aec",
                                       "ORTHANC",
                                       "127.0.0.1",
                                       std::to_string(dicom_port_)};
      for (const auto& f : files) argv.push_back(f.string());
      const auto result = testing::RunCommand(argv, std::chrono::seconds(120));
      if (result.exit_code != 0) {
        ready_ = false;
        load_error_ = result.output;
        return;
      }
      study_files_[s.uid] = files;
    }
  }

  static void TearDownTestSuite() {
    delete orthanc_;
    orthanc_ = nullptr;
    delete root_;
    root_ = nullptr;
  }

  void SetUp() override {
    if (!OnPath("Orthanc")) GTEST_SKIP() << "the Orthanc binary is not installed";
    ASSERT_TRUE(ready_) << "Orthanc did not start or take the studies: " << load_error_;
    auto spool = Spool::Open(SpoolOptions{dir_.path() / "spool", 0});
    ASSERT_TRUE(spool.ok());
    spool_ = std::move(*spool);
    auto index = OpenSqliteIndex(dir_.path() / "index.sqlite");
    ASSERT_TRUE(index.ok());
    index_ = std::move(*index);
    ASSERT_TRUE(
        testing::StoreReceived(*index_, *spool_, study_files_[kCurrent], clock_.Now()).ok());
    job_.id = JobId{1};
    job_.study_uid = StudyUid(kCurrent);
    job_.tool = "remote";
    tool_.name = "remote";
    tool_.kind = ToolKind::kDicomweb;
    tool_.priors.count = 2;
    tool_.priors.max_age = std::chrono::hours(24 * 365 * 5);
    tool_.priors.time_limit = std::chrono::seconds(120);
    config_.dicom.ae_title = AeTitle("CONDUIT");
  }

  std::set<std::string> StudiesOf(const std::vector<fs::path>& files) {
    std::set<std::string> out;
    for (const auto& f : files) {
      auto meta = ReadInstanceMeta(f);
      EXPECT_TRUE(meta.ok()) << f;
      if (meta.ok()) out.insert(meta->study_uid.str());
    }
    return out;
  }

  Result<std::vector<fs::path>> Gather() {
    auto source = MakePriorSource(config_, nullptr);
    EXPECT_NE(source, nullptr);
    PriorFetcherImpl fetcher(std::move(source), *index_, *spool_, clock_, metrics_);
    return fetcher.Gather(job_, tool_, {});
  }

  // The current study's files and `priors`, de-identified as for a remote tool.
  std::vector<fs::path> Deidentified(const std::vector<fs::path>& priors) {
    auto current = index_->ListInstances(StudyUid(kCurrent));
    EXPECT_TRUE(current.ok());
    std::vector<fs::path> inputs;
    for (const auto& i : *current) inputs.push_back(spool_->PathOf(i.spool_key));
    inputs.insert(inputs.end(), priors.begin(), priors.end());
    PseudonymKey key;
    key.bytes.assign(32, 0x5a);
    key.id = "test-key";
    DeidSettings settings;
    settings.policy_hash = "feedfacefeedface";
    TransferGuard guard(*index_, *spool_, clock_, metrics_, Pseudonymiser(key),
                        {{"remote", settings}});
    auto out = guard.Prepare(job_, inputs, dir_.path() / "deidentified");
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : std::vector<fs::path>{};
  }

  void ExpectTheTwoRecentPriorsUnderOnePseudonym(const Result<std::vector<fs::path>>& files) {
    ASSERT_TRUE(files.ok()) << files.status().ToString();
    EXPECT_EQ(files->size(), 4u);
    EXPECT_EQ(StudiesOf(*files), (std::set<std::string>{kPrior2023, kPrior2021}));
    for (const auto& f : *files) EXPECT_EQ(Get(f, DCM_PatientID), kPatient) << f;
    const auto out = Deidentified(*files);
    ASSERT_EQ(out.size(), 6u) << "2 current + 4 prior instances";
    std::set<std::string> patients, studies;
    for (const auto& f : out) {
      patients.insert(Get(f, DCM_PatientID));
      studies.insert(Get(f, DCM_StudyInstanceUID));
    }
    EXPECT_EQ(patients.size(), 1u) << "one pseudonymous patient for the study and its priors";
    EXPECT_NE(*patients.begin(), kPatient);
    EXPECT_EQ(studies.size(), 3u) << "three studies, each under its own pseudonymous UID";
    EXPECT_EQ(studies.count(kCurrent), 0u);
  }

  static inline testing::TempDir* root_ = nullptr;
  static inline testing::Process* orthanc_ = nullptr;
  static inline int dicom_port_ = 0;
  static inline int http_port_ = 0;
  static inline bool ready_ = false;
  static inline std::string load_error_;
  static inline std::map<std::string, std::vector<fs::path>> study_files_;

  testing::TempDir dir_;
  FakeClock clock_;
  Metrics metrics_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Index> index_;
  Config config_;
  JobRecord job_;
  ToolConfig tool_;
};

TEST_F(PriorFetchOrthancTest, DimseFindsAndGetsTheTwoMostRecentComparablePriors) {
  config_.priors_source.kind = PriorsSourceKind::kDimse;
  config_.priors_source.ae_title = AeTitle("ORTHANC");
  config_.priors_source.host = "127.0.0.1";
  config_.priors_source.port = dicom_port_;
  ExpectTheTwoRecentPriorsUnderOnePseudonym(Gather());
  auto held = index_->ListInstances(StudyUid(kPrior2021));
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->size(), 2u) << "durable in the index, unrouted";
}

TEST_F(PriorFetchOrthancTest, DicomwebSearchesAndRetrievesTheTwoMostRecentComparablePriors) {
  config_.priors_source.kind = PriorsSourceKind::kDicomweb;
  config_.priors_source.url = "http://127.0.0.1:" + std::to_string(http_port_) + "/dicom-web";
  ExpectTheTwoRecentPriorsUnderOnePseudonym(Gather());
}

TEST_F(PriorFetchOrthancTest, DimseStudySearchAnswersWhatThePacsHolds) {
  DicomPeer peer{AeTitle("CONDUIT"), AeTitle("ORTHANC"),       "127.0.0.1",
                 dicom_port_,        std::chrono::seconds(30), {}};
  auto found =
      FindStudies(peer, kPatient, std::chrono::steady_clock::now() + std::chrono::minutes(1), {});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  std::map<std::string, StudyMatch> by_uid;
  for (const auto& m : *found) by_uid[m.study_uid.str()] = m;
  EXPECT_EQ(by_uid.size(), 6u) << "every study of the patient, none of the other";
  ASSERT_TRUE(by_uid.count(kMr2022));
  EXPECT_EQ(by_uid[kMr2022].modalities, std::vector<std::string>{"MR"});
  EXPECT_EQ(by_uid[kPrior2021].study_date, "20210620");
  EXPECT_EQ(by_uid[kPrior2021].instance_count, 2);
}

// The successful C-MOVE path needs our listener: tests/e2e/test_priors.py.
TEST_F(PriorFetchOrthancTest, ACMoveThePacsCannotCarryOutSaysWhy) {
  DicomPeer peer{AeTitle("CONDUIT"), AeTitle("ORTHANC"),       "127.0.0.1",
                 dicom_port_,        std::chrono::seconds(30), {}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  Result<int> unknown = MoveStudy(peer, StudyUid(kPrior2021), AeTitle("NOBODY"), deadline, {});
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnavailable);
  // Orthanc 1.10 answers C000 here, not A801 (which would add a hint to the message).
  EXPECT_NE(unknown.status().message().find("(destination NOBODY): status 0x"), std::string::npos)
      << unknown.status().ToString();
  // A destination the PACS knows but cannot reach: its sub-operations fail.
  Result<int> unreachable = MoveStudy(peer, StudyUid(kPrior2021), AeTitle("CONDUIT"), deadline, {});
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(unreachable.status().message().find("C-MOVE to ORTHANC@127.0.0.1"), std::string::npos)
      << unreachable.status().ToString();
}

TEST_F(PriorFetchOrthancTest, AnUnreachablePacsIsAMissingPriorWithinTheTimeLimit) {
  config_.priors_source.kind = PriorsSourceKind::kDimse;
  config_.priors_source.ae_title = AeTitle("ORTHANC");
  config_.priors_source.host = "127.0.0.1";
  config_.priors_source.port = testing::FreePort();  // nobody listens
  tool_.priors.on_missing = PriorsOnMissing::kWait;
  tool_.priors.time_limit = std::chrono::seconds(10);
  const auto started = std::chrono::steady_clock::now();
  auto files = Gather();
  EXPECT_EQ(files.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60));
  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(std::any_of(audit->begin(), audit->end(),
                          [](const AuditEvent& a) { return a.action == "prior_missing"; }));
}

}  // namespace
}  // namespace conduit
