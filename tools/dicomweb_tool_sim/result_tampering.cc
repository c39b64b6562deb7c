#include "dicomweb_tool_sim/result_tampering.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcstack.h>
#include <dcmtk/dcmdata/dcvrui.h>

#include <fstream>
#include <vector>

namespace conduit::tools {
namespace {

// Values longer than this stay on disk while reading an instance's identity.
constexpr Uint32 kMaxLoadedValueBytes = 4096;

std::string GetString(DcmItem& item, const DcmTagKey& tag) {
  OFString value;
  if (item.findAndGetOFString(tag, value).bad()) return "";
  return value.c_str();
}

}  // namespace

Result<InstanceInfo> ReadInstanceInfo(const std::filesystem::path& path) {
  DcmFileFormat file;
  OFCondition cond =
      file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, kMaxLoadedValueBytes, ERM_autoDetect);
  if (cond.bad()) return InvalidArgument(std::string("not a DICOM instance: ") + cond.text());
  DcmDataset& dataset = *file.getDataset();
  InstanceInfo info;
  info.study_uid = GetString(dataset, DCM_StudyInstanceUID);
  info.series_uid = GetString(dataset, DCM_SeriesInstanceUID);
  info.sop_instance_uid = GetString(dataset, DCM_SOPInstanceUID);
  info.sop_class_uid = GetString(dataset, DCM_SOPClassUID);
  info.modality = GetString(dataset, DCM_Modality);
  info.instance_number = GetString(dataset, DCM_InstanceNumber);
  if (info.study_uid.empty() || info.series_uid.empty() || info.sop_instance_uid.empty() ||
      info.sop_class_uid.empty()) {
    return InvalidArgument(
        "DICOM instance lacks a Study, Series or SOP Instance UID or a SOP Class UID");
  }
  info.path = path;
  return info;
}

Status RewriteUids(const std::filesystem::path& in, const std::filesystem::path& out,
                   const std::map<std::string, std::string>& replacements) {
  DcmFileFormat file;
  OFCondition cond = file.loadFile(in.c_str());
  if (cond.bad()) return InvalidArgument("rewrite " + in.filename().string() + ": " + cond.text());
  DcmStack stack;
  DcmDataset* dataset = file.getDataset();
  while (dataset->nextObject(stack, OFTrue).good()) {
    DcmObject* object = stack.top();
    if (object->ident() != EVR_UI) continue;
    auto* element = static_cast<DcmUniqueIdentifier*>(object);
    OFString value;
    if (element->getOFStringArray(value).bad()) continue;
    auto it = replacements.find(value.c_str());
    if (it != replacements.end()) element->putString(it->second.c_str());
  }
  cond = file.saveFile(out.c_str(), EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL,
                       EPD_noChange, 0, 0, EWM_updateMeta);
  if (cond.bad()) return Internal("rewrite " + out.filename().string() + ": " + cond.text());
  return Status::Ok();
}

Status WriteTruncated(const std::filesystem::path& in, const std::filesystem::path& out) {
  std::ifstream source(in, std::ios::binary);
  // The preamble and "DIC": pydicom refuses it (no "DICM" prefix) and DCMTK, reading it as a
  // bare data set, meets the end of the stream inside an element.
  std::vector<char> head(128 + 3);
  source.read(head.data(), static_cast<std::streamsize>(head.size()));
  if (source.gcount() != static_cast<std::streamsize>(head.size())) {
    return Internal("truncate " + in.filename().string() + ": file too short");
  }
  std::ofstream target(out, std::ios::binary | std::ios::trunc);
  target.write(head.data(), static_cast<std::streamsize>(head.size()));
  target.close();
  if (!target) return Internal("truncate " + out.filename().string() + ": write failed");
  return Status::Ok();
}

}  // namespace conduit::tools
