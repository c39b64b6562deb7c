#include "pipeline/prior_test_support.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include "dicom/instance_meta.h"
#include "dicom/test_support.h"
#include "store/received_instance.h"

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
    Receipt receipt;
    receipt.calling_ae = AeTitle("MODALITY");
    receipt.received_at = at;
    receipt.actor = "MODALITY";
    RETURN_IF_ERROR(StoreReceivedInstance(spool, index, incoming, meta, receipt).status());
  }
  return Status::Ok();
}

}  // namespace conduit::testing
