// WADO-RS and QIDO-RS against a real SQLite index and spool behind a real httplib server.
// Retrieved instances are checked by an independent parser (pydicom under /usr/bin/python3).
#include "http/dicomweb_read.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/metrics.h"
#include "dicom/instance_meta.h"
#include "dicom/test_support.h"
#include "http/dicomweb_request.h"
#include "http/http_test_support.h"
#include "http/multipart.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kStudyA = "1.2.826.0.1.3680043.10.1137.100";
constexpr const char* kStudyB = "1.2.826.0.1.3680043.10.1137.200";
constexpr const char* kStudyC = "1.2.826.0.1.3680043.10.1137.300";

struct Spec {
  std::string study, series, sop;
  std::string patient_name = "DOE^JANE";
  std::string patient_id = "PID-A";
  std::string study_date = "20240115";
  std::string study_time = "101500";
  std::string modality = "CT";
  std::string description = "CT HEAD";
  int series_number = 1;
  int instance_number = 1;
  int frames = 1;
  uint16_t rows = 8;
  uint16_t columns = 8;
  std::string charset;  // SpecificCharacterSet
};

Spec MakeSpec(std::string study, std::string series, std::string sop) {
  Spec s;
  s.study = std::move(study);
  s.series = std::move(series);
  s.sop = std::move(sop);
  return s;
}

AuditEvent ReceiveAudit(TimePoint at, const StudyUid& study) {
  AuditEvent e;
  e.at = at;
  e.action = "receive";
  e.outcome = "success";
  e.actor = "test";
  e.study_ref = StudyRef(study);
  return e;
}

// A Part 10 file in explicit VR little endian; frame f's pixels all hold the value f.
void WriteInstance(const fs::path& file, const Spec& s) {
  DcmFileFormat format;
  DcmDataset* d = format.getDataset();
  if (!s.charset.empty()) d->putAndInsertString(DCM_SpecificCharacterSet, s.charset.c_str());
  d->putAndInsertString(DCM_SOPClassUID, "1.2.840.10008.5.1.4.1.1.2");
  d->putAndInsertString(DCM_SOPInstanceUID, s.sop.c_str());
  d->putAndInsertString(DCM_StudyInstanceUID, s.study.c_str());
  d->putAndInsertString(DCM_SeriesInstanceUID, s.series.c_str());
  d->putAndInsertString(DCM_PatientName, s.patient_name.c_str());
  d->putAndInsertString(DCM_PatientID, s.patient_id.c_str());
  d->putAndInsertString(DCM_PatientBirthDate, "19700101");
  d->putAndInsertString(DCM_PatientSex, "F");
  d->putAndInsertString(DCM_StudyDate, s.study_date.c_str());
  d->putAndInsertString(DCM_StudyTime, s.study_time.c_str());
  d->putAndInsertString(DCM_AccessionNumber, "ACC-1");
  d->putAndInsertString(DCM_StudyDescription, s.description.c_str());
  d->putAndInsertString(DCM_Modality, s.modality.c_str());
  d->putAndInsertString(DCM_SeriesNumber, std::to_string(s.series_number).c_str());
  d->putAndInsertString(DCM_InstanceNumber, std::to_string(s.instance_number).c_str());
  d->putAndInsertString(DCM_NumberOfFrames, std::to_string(s.frames).c_str());
  d->putAndInsertUint16(DCM_Rows, s.rows);
  d->putAndInsertUint16(DCM_Columns, s.columns);
  d->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  d->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  d->putAndInsertUint16(DCM_BitsAllocated, 16);
  d->putAndInsertUint16(DCM_BitsStored, 16);
  d->putAndInsertUint16(DCM_HighBit, 15);
  d->putAndInsertUint16(DCM_PixelRepresentation, 0);
  const size_t per_frame = size_t{s.rows} * s.columns;
  std::vector<Uint16> pixels(per_frame * s.frames);
  for (int f = 0; f < s.frames; ++f) {
    std::fill(pixels.begin() + f * per_frame, pixels.begin() + (f + 1) * per_frame, f + 1);
  }
  ASSERT_TRUE(d->putAndInsertUint16Array(DCM_PixelData, pixels.data(), pixels.size()).good());
  ASSERT_TRUE(format.saveFile(file.c_str(), EXS_LittleEndianExplicit).good()) << file;
}

// Runs `argv` with the response body on stdin; returns its standard output.
std::string RunPython(const std::string& script, const std::string& input_file,
                      const std::string& arg) {
  const fs::path script_file = input_file + ".py";
  std::ofstream(script_file) << script;
  const std::string command =
      "/usr/bin/python3 " + script_file.string() + " " + input_file + " '" + arg + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out.append(buffer, n);
  pclose(pipe);
  return out;
}

// Splits a multipart/related body by its boundary and reads each part with pydicom.
constexpr const char* kPydicomParts = R"py(
import io, json, re, sys
import pydicom
body = open(sys.argv[1], 'rb').read()
boundary = re.search(r'boundary="?([^";]+)"?', sys.argv[2]).group(1).encode()
out = []
for piece in body.split(b'--' + boundary)[1:]:
    if piece.startswith(b'--'):
        break
    headers, _, data = piece.partition(b'\r\n\r\n')
    data = data[:-2] if data.endswith(b'\r\n') else data
    ds = pydicom.dcmread(io.BytesIO(data))
    ctype = [h for h in headers.decode().split('\r\n') if h.lower().startswith('content-type')]
    out.append({'sop': ds.SOPInstanceUID, 'study': ds.StudyInstanceUID,
                'ts': str(ds.file_meta.TransferSyntaxUID), 'frames': int(ds.get('NumberOfFrames', 1)),
                'pixel_bytes': len(ds.PixelData), 'content_type': ctype[0] if ctype else ''})
print(json.dumps(out))
)py";

class DicomwebReadTest : public testing::DicomwebReadFixture {
 protected:
  DicomwebReadTest() { config_.http.public_url = "https://conduit.example/"; }

  // Stores an instance as ingest does: spool commit, then an index row with its attributes.
  void Ingest(const Spec& s) {
    const fs::path file = tmp_.path() / "gen" / (s.sop + ".dcm");
    fs::create_directories(file.parent_path());
    WriteInstance(file, s);
    IngestFile(file);
  }

  // Three studies: A (two series, CT and MR, three instances), B and C (one CT each).
  void IngestThreeStudies() {
    Ingest(MakeSpec(kStudyA, std::string(kStudyA) + ".1", std::string(kStudyA) + ".1.1"));
    Spec a2 = MakeSpec(kStudyA, std::string(kStudyA) + ".1", std::string(kStudyA) + ".1.2");
    a2.instance_number = 2;
    Ingest(a2);
    Spec a3 = MakeSpec(kStudyA, std::string(kStudyA) + ".2", std::string(kStudyA) + ".2.1");
    a3.modality = "MR";
    a3.series_number = 2;
    a3.frames = 3;
    Ingest(a3);
    Spec b = MakeSpec(kStudyB, std::string(kStudyB) + ".1", std::string(kStudyB) + ".1.1");
    b.patient_name = "DOE^JOHN";
    b.patient_id = "PID-B";
    b.study_date = "20240220";
    Ingest(b);
    Spec c = MakeSpec(kStudyC, std::string(kStudyC) + ".1", std::string(kStudyC) + ".1.1");
    c.patient_name = "SMITH^ANNA";
    c.patient_id = "PID-C";
    c.study_date = "20231231";
    c.description = "CHEST";
    Ingest(c);
  }

  json GetJson(const std::string& path, int expected_status = 200) {
    auto res = Get(path);
    EXPECT_TRUE(res) << path;
    if (!res) return json();
    EXPECT_EQ(res->status, expected_status) << path << ": " << res->body;
    json body = json::parse(res->body, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << path << ": " << res->body.substr(0, 2000);
    return body;
  }

  // The values of `tag` in each result, as strings ("" when absent).
  static std::vector<std::string> Column(const json& results, const std::string& tag) {
    std::vector<std::string> out;
    for (const json& r : results) {
      std::string v;
      if (r.contains(tag) && r[tag].contains("Value")) {
        const json& first = r[tag]["Value"][0];
        v = first.is_string()   ? first.get<std::string>()
            : first.is_object() ? first.value("Alphabetic", "")
                                : first.dump();
      }
      out.push_back(v);
    }
    return out;
  }

  // The audit entries of `action` (retrieve, query), oldest first, their details parsed.
  std::vector<std::pair<AuditEvent, json>> ReadAudits(const std::string& action) {
    std::vector<std::pair<AuditEvent, json>> out;
    auto audit = index_->ListAudit(1000, 0);
    EXPECT_TRUE(audit.ok());
    if (!audit.ok()) return out;
    for (const AuditEvent& e : *audit) {
      if (e.action == action) out.emplace_back(e, json::parse(e.detail));
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  std::vector<json> Pydicom(const httplib::Result& res) {
    const fs::path body = tmp_.path() / "body.bin";
    std::ofstream(body, std::ios::binary) << res->body;
    const std::string out =
        RunPython(kPydicomParts, body.string(), res->get_header_value("Content-Type"));
    json parts = json::parse(out, nullptr, false);
    EXPECT_TRUE(parts.is_array()) << out;
    return parts.is_array() ? parts.get<std::vector<json>>() : std::vector<json>{};
  }
};

TEST_F(DicomwebReadTest, StudySearchReturnsRequiredAttributesAndCounts) {
  IngestThreeStudies();
  json studies = GetJson("/dicom-web/studies");
  ASSERT_EQ(studies.size(), 3u);
  EXPECT_EQ(Column(studies, "0020000D"), (std::vector<std::string>{kStudyC, kStudyB, kStudyA}))
      << "newest first";
  const json& a = studies[2];
  for (const char* tag :
       {"00080020", "00080030", "00080050", "00080061", "00080090", "00081190", "00100010",
        "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206", "00201208"}) {
    EXPECT_TRUE(a.contains(tag)) << tag;
  }
  EXPECT_EQ(a["00201206"]["Value"][0], 2);
  EXPECT_EQ(a["00201208"]["Value"][0], 3);
  EXPECT_EQ(a["00080061"]["Value"], json({"CT", "MR"}));
  EXPECT_EQ(a["00080061"]["vr"], "CS");
  EXPECT_EQ(a["00100010"]["Value"][0]["Alphabetic"], "DOE^JANE");
  EXPECT_EQ(a["00081190"]["Value"][0],
            std::string("https://conduit.example/dicom-web/studies/") + kStudyA);
  EXPECT_FALSE(a["00200010"].contains("Value")) << "StudyID absent: returned empty";
}

TEST_F(DicomwebReadTest, StudySearchMatchesExactWildcardDateRangeUidListAndFuzzy) {
  IngestThreeStudies();
  struct Case {
    std::string query;
    std::vector<std::string> studies;  // newest first
  };
  for (const Case& c : std::vector<Case>{
           {"PatientName=DOE%5EJANE", {kStudyA}},
           {"PatientName=DOE*", {kStudyB, kStudyA}},
           {"PatientName=doe*", {}},
           {"PatientName=doe&fuzzymatching=true", {kStudyB, kStudyA}},
           {"PatientID=PID-?", {kStudyC, kStudyB, kStudyA}},
           {"StudyDate=20240101-20240131", {kStudyA}},
           {"StudyDate=-20240131", {kStudyC, kStudyA}},
           {"StudyDate=20240115&StudyTime=1000-1100", {kStudyA}},
           {"StudyDate=20240115&StudyTime=1100-", {}},
           {std::string("StudyInstanceUID=") + kStudyA + "," + kStudyC, {kStudyC, kStudyA}},
           {std::string("StudyInstanceUID=") + kStudyB, {kStudyB}},
           {"ModalitiesInStudy=MR", {kStudyA}},
           {"StudyDescription=CHEST", {kStudyC}},
           {"AccessionNumber=NONE", {}},
       }) {
    json found = GetJson("/dicom-web/studies?" + c.query);
    EXPECT_EQ(Column(found, "0020000D"), c.studies) << c.query;
  }
}

TEST_F(DicomwebReadTest, SeriesAndInstanceSearchesAtEveryScope) {
  IngestThreeStudies();
  const std::string a = kStudyA;
  json series = GetJson("/dicom-web/studies/" + a + "/series");
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(Column(series, "0020000E"), (std::vector<std::string>{a + ".1", a + ".2"}));
  EXPECT_EQ(series[0]["00201209"]["Value"][0], 2);
  EXPECT_EQ(series[1]["00080060"]["Value"][0], "MR");
  EXPECT_EQ(series[1]["00081190"]["Value"][0],
            "https://conduit.example/dicom-web/studies/" + a + "/series/" + a + ".2");
  EXPECT_FALSE(series[0].contains("00100010")) << "within a study: no study attributes";

  json mr = GetJson("/dicom-web/series?Modality=MR");
  ASSERT_EQ(mr.size(), 1u);
  EXPECT_EQ(mr[0]["0020000D"]["Value"][0], a);
  EXPECT_TRUE(mr[0].contains("00100010")) << "across studies: study attributes too";

  json instances = GetJson("/dicom-web/studies/" + a + "/series/" + a + ".1/instances");
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_EQ(Column(instances, "00080018"), (std::vector<std::string>{a + ".1.1", a + ".1.2"}));
  EXPECT_EQ(instances[0]["00280010"]["Value"][0], 8) << "Rows";
  EXPECT_EQ(instances[0]["00280010"]["vr"], "US");
  EXPECT_EQ(instances[0]["00280100"]["Value"][0], 16) << "BitsAllocated";
  EXPECT_EQ(instances[0]["00200013"]["Value"][0], 1) << "InstanceNumber";

  json in_study = GetJson("/dicom-web/studies/" + a + "/instances?NumberOfFrames=3");
  EXPECT_EQ(Column(in_study, "00080018"), (std::vector<std::string>{a + ".2.1"}));

  json everywhere = GetJson("/dicom-web/instances?PatientID=PID-B");
  ASSERT_EQ(everywhere.size(), 1u);
  EXPECT_EQ(everywhere[0]["0020000D"]["Value"][0], kStudyB);
  EXPECT_TRUE(everywhere[0].contains("00080060")) << "across series: series attributes too";
}

TEST_F(DicomwebReadTest, IncludefieldAddsStoredAttributes) {
  IngestThreeStudies();
  json one = GetJson(std::string("/dicom-web/studies?StudyInstanceUID=") + kStudyC +
                     "&includefield=StudyDescription,00100030");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["00081030"]["Value"][0], "CHEST");
  EXPECT_EQ(one[0]["00081030"]["vr"], "LO");

  json all =
      GetJson(std::string("/dicom-web/studies?StudyInstanceUID=") + kStudyC + "&includefield=all");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["00200011"]["Value"][0], 1) << "SeriesNumber, from the stored attributes";
  EXPECT_FALSE(all[0].contains("00080018")) << "no instance UID at study level";
}

TEST_F(DicomwebReadTest, LimitOffsetAndWarnings) {
  IngestThreeStudies();
  EXPECT_EQ(Column(GetJson("/dicom-web/studies?limit=2"), "0020000D"),
            (std::vector<std::string>{kStudyC, kStudyB}));
  EXPECT_EQ(Column(GetJson("/dicom-web/studies?limit=2&offset=2"), "0020000D"),
            (std::vector<std::string>{kStudyA}));
  EXPECT_TRUE(GetJson("/dicom-web/studies?offset=3").empty());

  auto empty = Get("/dicom-web/studies?PatientID=NOBODY");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 200);
  EXPECT_EQ(empty->body, "[]");
  EXPECT_EQ(empty->get_header_value("Content-Type"), "application/dicom+json");

  auto capped = Get("/dicom-web/studies?limit=999999");
  ASSERT_TRUE(capped);
  EXPECT_EQ(capped->status, 200);

  auto ignored = Get("/dicom-web/studies?NotAKeyword=1&emptyvaluematching=true");
  ASSERT_TRUE(ignored);
  EXPECT_EQ(ignored->status, 200);
  std::string warnings;
  for (size_t i = 0; i < ignored->get_header_value_count("Warning"); ++i) {
    warnings += ignored->get_header_value("Warning", i) + "\n";
  }
  EXPECT_NE(warnings.find("299 conduit: "), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("NotAKeyword"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("emptyvaluematching"), std::string::npos) << warnings;
}

TEST_F(DicomwebReadTest, ManyStudiesPageWithTheServerMaximum) {
  // 1,005 studies of one instance each, written straight to the index (no files needed).
  for (int i = 0; i < 1005; ++i) {
    InstanceRecord r;
    r.study_uid = StudyUid("1.2.3." + std::to_string(i));
    r.series_uid = SeriesUid("1.2.3." + std::to_string(i) + ".1");
    r.sop_instance_uid = SopInstanceUid("1.2.3." + std::to_string(i) + ".1.1");
    r.sop_class_uid = SopClassUid("1.2.840.10008.5.1.4.1.1.2");
    r.received_at = clock_.Now() + std::chrono::seconds(i);
    r.patient_name = i % 2 == 0 ? "EVEN^PATIENT" : "ODD^PATIENT";
    r.attributes = {{"PatientName", r.patient_name}, {"StudyDate", "20240101"}};
    ASSERT_TRUE(index_->PutInstance(r, ReceiveAudit(clock_.Now(), r.study_uid)).ok());
  }
  const auto started = std::chrono::steady_clock::now();
  auto all = Get("/dicom-web/studies");
  std::printf("search over 1005 studies: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
  ASSERT_TRUE(all);
  EXPECT_EQ(json::parse(all->body).size(), 1000u);
  EXPECT_NE(all->get_header_value("Warning").find("Additional results"), std::string::npos);

  json odd = GetJson("/dicom-web/studies?PatientName=ODD*&limit=10&offset=500");
  ASSERT_EQ(odd.size(), 2u) << "502 odd studies; from the 501st";
  EXPECT_EQ(odd[0]["00100010"]["Value"][0]["Alphabetic"], "ODD^PATIENT");
}

TEST_F(DicomwebReadTest, BadQueriesAndMediaTypesAreRefused) {
  IngestThreeStudies();
  for (const std::string query :
       {"StudyDate=2024-01", "limit=-1", "PatientName=A&PatientName=B", "00081032.00080100=x",
        "includefield=NoSuchKeyword", "SOPInstanceUID=1.2", "fuzzymatching=maybe"}) {
    auto res = Get("/dicom-web/studies?" + query);
    ASSERT_TRUE(res) << query;
    EXPECT_EQ(res->status, 400) << query;
    json body = json::parse(res->body, nullptr, false);
    EXPECT_TRUE(body.contains("error")) << query;
  }
  auto xml = Get("/dicom-web/studies", {{"Accept", "application/dicom+xml"}});
  ASSERT_TRUE(xml);
  EXPECT_EQ(xml->status, 406);
  auto json_ok = Get("/dicom-web/studies", {{"Accept", "application/json, */*;q=0.1"}});
  ASSERT_TRUE(json_ok);
  EXPECT_EQ(json_ok->status, 200);
  auto bad_uid = Get("/dicom-web/studies/not-a-uid/series");
  ASSERT_TRUE(bad_uid);
  EXPECT_EQ(bad_uid->status, 400);
  auto unknown = Get("/dicom-web/patients");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(DicomwebReadTest, RetrievesStudySeriesAndInstanceAsStored) {
  IngestThreeStudies();
  const std::string a = kStudyA;
  auto study = Get("/dicom-web/studies/" + a);
  ASSERT_TRUE(study);
  ASSERT_EQ(study->status, 200) << study->body;
  EXPECT_EQ(study->get_header_value("Content-Type")
                .rfind("multipart/related; type=\"application/dicom\"; boundary=", 0),
            0u);
  auto parts = Pydicom(study);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0]["sop"], a + ".1.1");
  EXPECT_EQ(parts[1]["sop"], a + ".1.2");
  EXPECT_EQ(parts[2]["sop"], a + ".2.1");
  EXPECT_EQ(parts[2]["frames"], 3);
  EXPECT_EQ(parts[2]["pixel_bytes"], 3 * 8 * 8 * 2);
  EXPECT_EQ(parts[0]["content_type"],
            "Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1");

  auto series = Get("/dicom-web/studies/" + a + "/series/" + a + ".1",
                    {{"Accept",
                      "multipart/related; type=\"application/dicom\"; "
                      "transfer-syntax=*"}});
  ASSERT_TRUE(series);
  ASSERT_EQ(series->status, 200);
  EXPECT_EQ(Pydicom(series).size(), 2u);

  auto instance = Get("/dicom-web/studies/" + a + "/series/" + a + ".2/instances/" + a + ".2.1",
                      {{"Accept",
                        "multipart/related; type=\"application/dicom\"; "
                        "transfer-syntax=1.2.840.10008.1.2.1"}});
  ASSERT_TRUE(instance);
  ASSERT_EQ(instance->status, 200);
  auto one = Pydicom(instance);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["sop"], a + ".2.1");

  auto jpeg = Get("/dicom-web/studies/" + a, {{"Accept",
                                               "multipart/related; type=\"application/dicom\"; "
                                               "transfer-syntax=1.2.840.10008.1.2.4.50"}});
  ASSERT_TRUE(jpeg);
  EXPECT_EQ(jpeg->status, 406) << "no transcoding";

  auto wrong_series =
      Get("/dicom-web/studies/" + a + "/series/" + a + ".1/instances/" + a + ".2.1");
  ASSERT_TRUE(wrong_series);
  EXPECT_EQ(wrong_series->status, 404) << "the instance is in another series";
  auto missing = Get("/dicom-web/studies/1.2.3.4.5");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(DicomwebReadTest, MetadataIsDicomJsonWithoutBulkData) {
  IngestThreeStudies();
  const std::string a = kStudyA;
  json metadata = GetJson("/dicom-web/studies/" + a + "/metadata");
  ASSERT_EQ(metadata.size(), 3u);
  EXPECT_EQ(Column(metadata, "00080018"),
            (std::vector<std::string>{a + ".1.1", a + ".1.2", a + ".2.1"}));
  EXPECT_EQ(metadata[0]["00100010"]["Value"][0]["Alphabetic"], "DOE^JANE");
  EXPECT_EQ(metadata[0]["00280010"]["Value"][0], 8);
  EXPECT_FALSE(metadata[0].contains("7FE00010")) << "no pixel data";
  EXPECT_FALSE(metadata[0].contains("00020010")) << "no file meta information";

  json one =
      GetJson("/dicom-web/studies/" + a + "/series/" + a + ".2/instances/" + a + ".2.1/metadata");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["00280008"]["Value"][0], 3);
  auto xml = Get("/dicom-web/studies/" + a + "/metadata", {{"Accept", "application/dicom+xml"}});
  ASSERT_TRUE(xml);
  EXPECT_EQ(xml->status, 406);
}

TEST_F(DicomwebReadTest, MetadataTextIsUtf8) {
  Spec s = MakeSpec(kStudyA, std::string(kStudyA) + ".1", std::string(kStudyA) + ".1.1");
  s.charset = "ISO_IR 100";
  s.patient_name =
      "M\xDC"
      "LLER^J\xD6RG";  // Latin-1
  Ingest(s);
  json metadata = GetJson(std::string("/dicom-web/studies/") + kStudyA + "/metadata");
  ASSERT_EQ(metadata.size(), 1u);
  EXPECT_EQ(metadata[0]["00100010"]["Value"][0]["Alphabetic"], "M\xC3\x9CLLER^J\xC3\x96RG");
  json studies = GetJson("/dicom-web/studies?PatientName=M%C3%9CLLER*");
  ASSERT_EQ(studies.size(), 1u) << "matching compares UTF-8";
  EXPECT_EQ(studies[0]["00100010"]["Value"][0]["Alphabetic"], "M\xC3\x9CLLER^J\xC3\x96RG");
}

// Parts of a multipart body, with the C++ reader.
std::vector<std::pair<std::string, std::string>> Parts(const httplib::Result& res) {
  std::vector<std::pair<std::string, std::string>> parts;
  auto type = ParseMediaType(res->get_header_value("Content-Type"));
  EXPECT_TRUE(type.ok());
  if (!type.ok()) return parts;
  MultipartCallbacks callbacks;
  callbacks.on_part_begin = [&](const std::vector<HeaderField>& headers) {
    parts.emplace_back(std::string(FindHeader(headers, "content-type").value_or("")), "");
    return Status::Ok();
  };
  callbacks.on_part_data = [&](std::string_view bytes) {
    parts.back().second.append(bytes);
    return Status::Ok();
  };
  MultipartReader reader(std::string(*type->Parameter("boundary")), callbacks);
  EXPECT_TRUE(reader.Feed(res->body).ok());
  EXPECT_TRUE(reader.Finish().ok());
  return parts;
}

TEST_F(DicomwebReadTest, FramesOfNativeAndEncapsulatedInstances) {
  IngestThreeStudies();
  const std::string a = kStudyA;
  const std::string base =
      "/dicom-web/studies/" + a + "/series/" + a + ".2/instances/" + a + ".2.1";
  auto frames = Get(base + "/frames/3,1");
  ASSERT_TRUE(frames);
  ASSERT_EQ(frames->status, 200) << frames->body;
  EXPECT_EQ(frames->get_header_value("Content-Type")
                .rfind("multipart/related; type=\"application/octet-stream\"", 0),
            0u);
  auto parts = Parts(frames);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].first, "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1");
  std::string frame3(8 * 8 * 2, '\0'), frame1(8 * 8 * 2, '\0');
  for (size_t i = 0; i < frame3.size(); i += 2) {
    frame3[i] = 3;
    frame1[i] = 1;
  }
  EXPECT_EQ(parts[0].second, frame3);
  EXPECT_EQ(parts[1].second, frame1);

  for (const auto& [list, status] :
       std::vector<std::pair<std::string, int>>{{"4", 404}, {"0", 400}, {"1,x", 400}, {"", 404}}) {
    auto res = Get(base + "/frames/" + list);
    ASSERT_TRUE(res) << list;
    EXPECT_EQ(res->status, status) << list;
  }
  auto jpeg_only = Get(base + "/frames/1", {{"Accept", "multipart/related; type=\"image/jpeg\""}});
  ASSERT_TRUE(jpeg_only);
  EXPECT_EQ(jpeg_only->status, 406);

  // JPEG-LS lossless: the frame is the encapsulated codestream, served as image/jls.
  testing::CtSpec ls;
  ls.study_uid = "1.2.826.0.1.3680043.10.1137.400";
  ls.series_uid = ls.study_uid + ".1";
  ls.sop_instance_uid = ls.study_uid + ".1.1";
  ls.syntax = testing::Syntax::kJpegLsLossless;
  const fs::path file = tmp_.path() / "gen" / "jls.dcm";
  fs::create_directories(file.parent_path());
  testing::WriteCtImage(file, ls);
  IngestFile(file);
  auto jls = Get("/dicom-web/studies/" + ls.study_uid + "/series/" + ls.series_uid + "/instances/" +
                 ls.sop_instance_uid + "/frames/1");
  ASSERT_TRUE(jls);
  ASSERT_EQ(jls->status, 200) << jls->body;
  auto jls_parts = Parts(jls);
  ASSERT_EQ(jls_parts.size(), 1u);
  EXPECT_EQ(jls_parts[0].first, "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80");
  ASSERT_GE(jls_parts[0].second.size(), 4u);
  EXPECT_EQ(jls_parts[0].second.substr(0, 4), std::string("\xFF\xD8\xFF\xF7", 4))
      << "JPEG-LS SOI then SOF55";
}

TEST_F(DicomwebReadTest, JobViewServesOnlyTheDeidentifiedFilesToItsToken) {
  IngestThreeStudies();  // originals: must never be served through the job view
  const JobId job{7};
  const fs::path dir = spool_->root() / "jobs" / "7" / "deidentified";
  fs::create_directories(dir);
  const std::string pseudo = "2.25.1234";
  for (int i = 1; i <= 2; ++i) {
    Spec s = MakeSpec(pseudo, pseudo + ".1", pseudo + ".1." + std::to_string(i));
    s.patient_name = "ANON";
    s.patient_id = "PSEUDO-1";
    s.instance_number = i;
    WriteInstance(dir / ("in" + std::to_string(i) + ".dcm"), s);
  }
  const httplib::Headers good = {{"Authorization", "Bearer " + tokens_.TokenFor(job)}};
  const std::string study_path = "/dicom-web/jobs/7/studies/" + pseudo;

  auto study = Get(study_path, good);
  ASSERT_TRUE(study);
  ASSERT_EQ(study->status, 200) << study->body;
  auto parts = Pydicom(study);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]["study"], pseudo);

  auto metadata =
      Get(study_path + "/series/" + pseudo + ".1/instances/" + pseudo + ".1.2/metadata", good);
  ASSERT_TRUE(metadata);
  ASSERT_EQ(metadata->status, 200);
  EXPECT_EQ(json::parse(metadata->body)[0]["00100020"]["Value"][0], "PSEUDO-1");

  auto search = Get(study_path + "/instances?InstanceNumber=2", good);
  ASSERT_TRUE(search);
  ASSERT_EQ(search->status, 200) << search->body;
  json found = json::parse(search->body);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["00081190"]["Value"][0], "https://conduit.example/dicom-web/jobs/7/studies/" +
                                                  pseudo + "/series/" + pseudo + ".1/instances/" +
                                                  pseudo + ".1.2");

  auto original = Get(std::string("/dicom-web/jobs/7/studies/") + kStudyA, good);
  ASSERT_TRUE(original);
  EXPECT_EQ(original->status, 404) << "the job view never serves originals";

  const std::string missing = "Bearer realm=\"conduit\"";
  const std::string invalid = "Bearer realm=\"conduit\", error=\"invalid_token\"";
  const std::vector<std::pair<httplib::Headers, std::string>> refused = {
      {{}, missing},
      {{{"Authorization", "Bearer " + tokens_.TokenFor(JobId{8})}}, invalid},
      {{{"Authorization", "Bearer " + std::string(64, '0')}}, invalid},
      {{{"Authorization", "Basic " + tokens_.TokenFor(job)}}, missing}};
  for (const auto& [headers, challenge] : refused) {
    auto res = Get(study_path, headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"), challenge);
  }
  // Counted, and audited once a minute per peer and reason, like every token refusal.
  EXPECT_EQ(metrics_.Value("conduit_http_auth_refused_total", R"(guard="job",reason="missing")"),
            2);
  EXPECT_EQ(metrics_.Value("conduit_http_auth_refused_total", R"(guard="job",reason="invalid")"),
            2);
  auto audit = index_->ListAudit(100, 0);
  ASSERT_TRUE(audit.ok());
  int read_refusals = 0;
  for (const AuditEvent& e : *audit) {
    if (e.action != "job_read_refused") continue;
    ++read_refusals;
    EXPECT_EQ(e.job_id, job);
    EXPECT_EQ(e.detail.find(pseudo), std::string::npos) << "the path is never recorded";
  }
  EXPECT_EQ(read_refusals, 2);
  auto other_job = Get("/dicom-web/jobs/8/studies/" + pseudo,
                       {{"Authorization", "Bearer " + tokens_.TokenFor(JobId{8})}});
  ASSERT_TRUE(other_job);
  EXPECT_EQ(other_job->status, 404) << "job 8 has no de-identified folder";
}

TEST_F(DicomwebReadTest, ReadsAreAuditedOncePerMinutePerClientResourceAndStudy) {
  IngestThreeStudies();
  const std::string a = kStudyA;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Get("/dicom-web/studies/" + a)->status, 200);
  ASSERT_EQ(Get("/dicom-web/studies/" + a + "/metadata")->status, 200);
  ASSERT_EQ(Get("/dicom-web/studies/" + a + "/series/" + a + ".2/instances/" + a + ".2.1/frames/2")
                ->status,
            200);
  ASSERT_EQ(Get("/dicom-web/studies/1.2.3.4.5")->status, 404);
  httplib::Client client("127.0.0.1", port_);
  ASSERT_EQ(client.Head("/dicom-web/studies/" + std::string(kStudyB))->status, 200);

  auto retrieved = ReadAudits("retrieve");
  ASSERT_EQ(retrieved.size(), 3u) << "one per resource: instances, metadata, frames";
  for (const auto& [event, detail] : retrieved) {
    EXPECT_EQ(event.study_ref, StudyRef(StudyUid(a)));
    EXPECT_EQ(event.outcome, "success");
    EXPECT_EQ(event.actor, "DICOMWEB (no token)");
    EXPECT_EQ(detail["peer"], "127.0.0.1");
    EXPECT_EQ(detail["credential"], "none");
    EXPECT_EQ(detail["view"], "original");
    EXPECT_EQ(detail["protocol"], "DICOMweb");
    EXPECT_FALSE(detail.contains("unaudited_before"));
    EXPECT_EQ(event.detail.find(a), std::string::npos) << "never the UID";
  }
  EXPECT_EQ(retrieved[0].second["resource"], "instances");
  EXPECT_EQ(retrieved[0].second["instances"], 3);
  EXPECT_EQ(retrieved[1].second["resource"], "metadata");
  EXPECT_EQ(retrieved[2].second["resource"], "frames");
  EXPECT_EQ(retrieved[2].second["instances"], 1);

  // A minute later the same read is audited again, saying how many went unaudited before it.
  clock_.Advance(std::chrono::seconds(61));
  ASSERT_EQ(Get("/dicom-web/studies/" + a)->status, 200);
  retrieved = ReadAudits("retrieve");
  ASSERT_EQ(retrieved.size(), 4u);
  EXPECT_EQ(retrieved[3].second["resource"], "instances");
  EXPECT_EQ(retrieved[3].second["unaudited_before"], 2);

  // Searches: the attributes matched on, never their values; universal matching is no filter.
  ASSERT_EQ(Get("/dicom-web/studies?PatientName=DOE*&StudyDate=20240101-&AccessionNumber=&"
                "includefield=StudyDescription")
                ->status,
            200);
  ASSERT_EQ(Get("/dicom-web/studies/" + a + "/series?Modality=MR")->status, 200);
  ASSERT_EQ(Get("/dicom-web/studies?PatientName=(bad&StudyDate=20240101-")->status, 200)
      << "no match, still a read";
  ASSERT_EQ(Get("/dicom-web/studies?limit=x")->status, 400);
  auto queried = ReadAudits("query");
  ASSERT_EQ(queried.size(), 2u) << "the third search shares the first's key; the 400 is none";
  ASSERT_EQ(Get("/dicom-web/studies?AccessionNumber=ACC-1")->status, 200);
  queried = ReadAudits("query");
  ASSERT_EQ(queried.size(), 3u) << "a search on other attributes is audited apart";
  EXPECT_EQ(queried[2].second["matched_on"], json({"AccessionNumber"}));
  EXPECT_EQ(queried[0].first.study_ref, "") << "across studies";
  EXPECT_EQ(queried[0].second["resource"], "studies");
  EXPECT_EQ(queried[0].second["matched_on"], json({"PatientName", "StudyDate"}));
  EXPECT_EQ(queried[0].second["matches"], 2);
  EXPECT_EQ(queried[0].first.detail.find("DOE"), std::string::npos) << "never a value";
  EXPECT_EQ(queried[1].first.study_ref, StudyRef(StudyUid(a)));
  EXPECT_EQ(queried[1].second["resource"], "series");
  EXPECT_EQ(queried[1].second["matched_on"], json({"Modality"}));
  EXPECT_EQ(queried[1].second["matches"], 1);
}

TEST_F(DicomwebReadTest, BehindATrustedProxyTheAuditNamesTheClientItForwarded) {
  IngestThreeStudies();
  const httplib::Headers forwarded = {{"X-Forwarded-For", "203.0.113.50, 198.51.100.7"}};
  // Not a trusted proxy: the header is ignored.
  ASSERT_EQ(Get(std::string("/dicom-web/studies/") + kStudyA, forwarded)->status, 200);
  config_.http.trusted_proxies = {AddressRange::Parse("127.0.0.0/8").value()};
  ASSERT_EQ(Get(std::string("/dicom-web/studies/") + kStudyB, forwarded)->status, 200);
  // A job token refusal names the forwarded client too.
  ASSERT_EQ(Get("/dicom-web/jobs/3/studies/2.25.1", forwarded)->status, 401);

  auto retrieved = ReadAudits("retrieve");
  ASSERT_EQ(retrieved.size(), 2u);
  EXPECT_EQ(retrieved[0].second["peer"], "127.0.0.1");
  EXPECT_FALSE(retrieved[0].second.contains("via"));
  EXPECT_EQ(retrieved[1].second["peer"], "198.51.100.7") << "the nearest untrusted hop";
  EXPECT_EQ(retrieved[1].second["via"], "127.0.0.1");
  auto refused = ReadAudits("job_read_refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].second["peer"], "198.51.100.7");
  EXPECT_EQ(refused[0].second["via"], "127.0.0.1");
}

TEST_F(DicomwebReadTest, JobViewReadsAreAuditedAgainstTheJobsToolAndOriginalStudy) {
  IngestThreeStudies();
  JobRecord record;
  record.study_uid = StudyUid(kStudyB);
  record.route = "ct";
  record.tool = "vendor-x";
  record.created_at = record.updated_at = record.next_attempt_at = clock_.Now();
  auto job = index_->CreateJob(record, ReceiveAudit(clock_.Now(), record.study_uid));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const fs::path dir = spool_->root() / "jobs" / std::to_string(job->value) / "deidentified";
  fs::create_directories(dir);
  const std::string pseudo = "2.25.98765";
  WriteInstance(dir / "in.dcm", MakeSpec(pseudo, pseudo + ".1", pseudo + ".1.1"));
  const httplib::Headers token = {{"Authorization", "Bearer " + tokens_.TokenFor(*job)}};
  const std::string path = "/dicom-web/jobs/" + std::to_string(job->value) + "/studies/" + pseudo;
  ASSERT_EQ(Get(path, token)->status, 200);
  ASSERT_EQ(Get(path + "/instances?SOPInstanceUID=" + pseudo + ".1.1", token)->status, 200);
  ASSERT_EQ(Get(path, {})->status, 401);

  auto retrieved = ReadAudits("retrieve");
  ASSERT_EQ(retrieved.size(), 1u);
  const auto& [event, detail] = retrieved[0];
  EXPECT_EQ(event.job_id, *job);
  EXPECT_EQ(event.actor, "vendor-x");
  EXPECT_EQ(event.study_ref, StudyRef(StudyUid(kStudyB))) << "the original study's reference";
  EXPECT_EQ(detail["view"], "deidentified");
  EXPECT_EQ(detail["credential"], "job");
  EXPECT_EQ(detail["instances"], 1);
  EXPECT_EQ(event.detail.find(pseudo), std::string::npos);
  auto queried = ReadAudits("query");
  ASSERT_EQ(queried.size(), 1u);
  EXPECT_EQ(queried[0].first.job_id, *job);
  EXPECT_EQ(queried[0].second["matched_on"], json({"SOPInstanceUID"}));
  EXPECT_EQ(queried[0].second["matches"], 1);
}

TEST_F(DicomwebReadTest, LargeStudyIsStreamedInBoundedMemory) {
  // 16 instances of 8 MiB of pixel data each: 128 MiB in all.
  const std::string study = "1.2.826.0.1.3680043.10.1137.500";
  for (int i = 1; i <= 16; ++i) {
    Spec s = MakeSpec(study, study + ".1", study + ".1." + std::to_string(i));
    s.instance_number = i;
    s.rows = 1024;
    s.columns = 1024;
    s.frames = 4;
    Ingest(s);
    fs::remove(tmp_.path() / "gen" / (s.sop + ".dcm"));
  }
  const int64_t before_kb = testing::PeakResidentKb();
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(300, 0);
  uint64_t received = 0;
  auto res = client.Get("/dicom-web/studies/" + study, [&](const char*, size_t n) {
    received += n;
    return true;
  });
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_GT(received, 16u * 8u * 1024u * 1024u);
  const int64_t after_kb = testing::PeakResidentKb();
  EXPECT_LT(after_kb - before_kb, 64 * 1024)
      << "streaming " << received / (1024 * 1024) << " MiB raised the peak by "
      << (after_kb - before_kb) / 1024 << " MiB";
}

// The base of the URLs in answers: the public URL when set; else the scheme this front end
// serves and the Host the client used, or bind:port for a Host that is absent or odd.
TEST(RequestBaseUrlTest, FollowsThePublicUrlElseTheSchemeServedAndTheHost) {
  Config config;
  config.http.bind = "10.1.2.3";
  config.http.port = 8443;
  httplib::Request req;
  req.headers.emplace("Host", "conduit.trust.nhs.uk:8443");
  EXPECT_EQ(RequestBaseUrl(config, req), "http://conduit.trust.nhs.uk:8443");
  config.http.tls_certificate_file = "cert.pem";
  config.http.tls_key_file = "key.pem";
  EXPECT_EQ(RequestBaseUrl(config, req), "https://conduit.trust.nhs.uk:8443");

  httplib::Request odd;
  odd.headers.emplace("Host", "evil.example/<script>");
  EXPECT_EQ(RequestBaseUrl(config, odd), "https://10.1.2.3:8443");
  EXPECT_EQ(RequestBaseUrl(config, httplib::Request{}), "https://10.1.2.3:8443");

  config.http.public_url = "https://pacs-gw.example/";
  EXPECT_EQ(RequestBaseUrl(config, req), "https://pacs-gw.example");
}

}  // namespace
}  // namespace conduit
