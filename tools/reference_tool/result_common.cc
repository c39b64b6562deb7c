#include "reference_tool/result_common.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>

#include "common/uid.h"

namespace conduit::tools {
namespace {

struct CopiedTag {
  DcmTagKey tag;
  bool type2;  // written empty when the source lacks it
};

const CopiedTag kCopiedTags[] = {
    {DCM_SpecificCharacterSet, false},
    // Patient module
    {DCM_PatientName, true},
    {DCM_PatientID, true},
    {DCM_IssuerOfPatientID, false},
    {DCM_IssuerOfPatientIDQualifiersSequence, false},
    {DCM_PatientBirthDate, true},
    {DCM_PatientBirthTime, false},
    {DCM_PatientSex, true},
    {DCM_OtherPatientIDsSequence, false},
    {DCM_EthnicGroup, false},
    {DCM_PatientComments, false},
    {DCM_PatientIdentityRemoved, false},
    {DCM_DeidentificationMethod, false},
    {DCM_DeidentificationMethodCodeSequence, false},
    // General Study module
    {DCM_StudyInstanceUID, false},
    {DCM_StudyDate, true},
    {DCM_StudyTime, true},
    {DCM_ReferringPhysicianName, true},
    {DCM_StudyID, true},
    {DCM_AccessionNumber, true},
    {DCM_IssuerOfAccessionNumberSequence, false},
    {DCM_StudyDescription, false},
    // Patient Study module
    {DCM_PatientAge, false},
    {DCM_PatientSize, false},
    {DCM_PatientWeight, false},
};

}  // namespace

ResultUids DeriveResultUids(const SourceSeries& source) {
  auto uid = [&](const char* role) {
    return DerivedUid({"conduit-reference-tool/v1", source.study_uid, source.series_uid, role});
  };
  ResultUids u;
  u.seg_series = uid("seg-series");
  u.seg_instance = uid("seg-instance");
  u.sr_series = uid("sr-series");
  u.sr_instance = uid("sr-instance");
  u.sc_series = uid("sc-series");
  u.sc_instance = uid("sc-instance");
  u.dimension_organization = uid("dimension-organization");
  u.body_tracking = uid("tracking-body");
  u.lung_tracking = uid("tracking-lung");
  u.device_observer = DerivedUid({"conduit-reference-tool/v1", "device-observer"});
  return u;
}

Status CopyPatientAndStudy(DcmItem& source, DcmItem& target) {
  for (const CopiedTag& t : kCopiedTags) {
    DcmElement* element = nullptr;
    if (source.findAndGetElement(t.tag, element).good() && element != nullptr) {
      DcmElement* copy = OFstatic_cast(DcmElement*, element->clone());
      OFCondition cond = target.insert(copy, /*replaceOld=*/OFTrue);
      if (cond.bad()) {
        delete copy;
        return Internal(std::string("copy ") + DcmTag(t.tag).getTagName() + ": " + cond.text());
      }
    } else if (t.type2) {
      OFCondition cond = target.insertEmptyElement(t.tag, /*replaceOld=*/OFTrue);
      if (cond.bad()) {
        return Internal(std::string("empty ") + DcmTag(t.tag).getTagName() + ": " + cond.text());
      }
    } else {
      target.findAndDeleteElement(t.tag);
    }
  }
  return Status::Ok();
}

Status SaveResult(DcmFileFormat& file, const std::filesystem::path& path) {
  file.getMetaInfo()->clear();
  OFCondition cond = file.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  if (cond.bad()) return Internal("write " + path.string() + ": " + cond.text());
  return Status::Ok();
}

}  // namespace conduit::tools
