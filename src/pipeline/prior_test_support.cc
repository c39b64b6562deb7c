#include "pipeline/prior_test_support.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include "dicom/instance_meta.h"
#include "dicom/test_support.h"

namespace conduit::testing {

namespace fs = std::filesystem;

std::vector<fs::path> WritePatientStudy(const fs::path& dir, const PatientStudySpec& spec,
                                        int instances) {
  fs::create_directories(dir);
  std::vector<fs::path> files;
  for (int i = 1; i <= instances; ++i) {
    CtSpec ct;
    ct.study_uid = spec.study_uid;
    ct.series_uid = spec.study_uid + ".1";
    ct.sop_instance_uid = spec.study_uid + ".1." + std::to_string(i);
    ct.instance_number = i;
    const fs::path file = dir / (std::to_string(i) + ".dcm");
    WriteCtImage(file, ct);
    DcmFileFormat ff;
    EXPECT_TRUE(ff.loadFile(file.c_str()).good()) << file;
    DcmDataset* d = ff.getDataset();
    d->putAndInsertString(DCM_PatientID, spec.patient_id.c_str());
    d->putAndInsertString(DCM_PatientName, "PRIORS^TEST");
    d->putAndInsertString(DCM_StudyDate, spec.study_date.c_str());
    d->putAndInsertString(DCM_Modality, spec.modality.c_str());
    d->putAndInsertString(DCM_BodyPartExamined, spec.body_part.c_str());
    d->putAndInsertString(DCM_StudyDescription, spec.study_description.c_str());
    d->putAndInsertString(DCM_AccessionNumber, ("ACC" + spec.study_date).c_str());
    EXPECT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good()) << file;
    files.push_back(file);
  }
  return files;
}

Status StoreReceived(Index& index, Spool& spool, const std::vector<fs::path>& files, TimePoint at) {
  for (const fs::path& file : files) {
    ASSIGN_OR_RETURN(InstanceMeta meta, ReadInstanceMeta(file));
    const fs::path incoming = spool.NewIncomingPath();
    fs::copy_file(file, incoming);
    ASSIGN_OR_RETURN(std::string key, spool.Commit(incoming, meta.sop_instance_uid));
    InstanceRecord r;
    r.study_uid = meta.study_uid;
    r.series_uid = meta.series_uid;
    r.sop_instance_uid = meta.sop_instance_uid;
    r.sop_class_uid = meta.sop_class_uid;
    r.transfer_syntax_uid = meta.transfer_syntax_uid;
    r.spool_key = key;
    r.size_bytes = fs::file_size(spool.PathOf(key));
    r.calling_ae = AeTitle("MODALITY");
    r.received_at = at;
    r.patient_id = meta.patient_id;
    r.study_date = meta.study_date;
    r.modality = meta.modality;
    r.body_part = meta.body_part;
    r.study_description = meta.study_description;
    r.series_number = meta.series_number;
    r.instance_number = meta.instance_number;
    r.attributes = meta.attributes;
    ASSIGN_OR_RETURN(PutOutcome outcome,
                     index.PutInstance(r, AuditEvent{at, "receive", "success", "MODALITY",
                                                     StudyRef(meta.study_uid), JobId{}, "{}", ""}));
    (void)outcome;
  }
  return Status::Ok();
}

}  // namespace conduit::testing
