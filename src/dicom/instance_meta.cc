#include "dicom/instance_meta.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmf.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "dicom/deflated_file.h"

namespace conduit {
namespace {

// Values above this are skipped by the parser (read lazily from the file if ever asked for),
// so memory stays bounded whatever the size of the instance.
constexpr Uint32 kMaxLoadedValueBytes = 4096;
constexpr unsigned long kMaxAttributeBytes = 1024;

bool IsTextVr(DcmEVR vr) {
  switch (vr) {
    case EVR_AE:
    case EVR_AS:
    case EVR_CS:
    case EVR_DA:
    case EVR_DS:
    case EVR_DT:
    case EVR_IS:
    case EVR_LO:
    case EVR_LT:
    case EVR_PN:
    case EVR_SH:
    case EVR_ST:
    case EVR_TM:
    case EVR_UC:
    case EVR_UI:
    case EVR_UR:
    case EVR_UT:
      return true;
    default:
      return false;
  }
}

// Binary numbers, kept in InstanceMeta::attributes as decimal text (Rows, BitsAllocated...).
bool IsNumericVr(DcmEVR vr) {
  return vr == EVR_US || vr == EVR_SS || vr == EVR_UL || vr == EVR_SL || vr == EVR_FL ||
         vr == EVR_FD;
}

// The element's text, or "" if absent or longer than kMaxAttributeBytes: a longer value was
// not loaded by the parser, and reading it would allocate its declared length.
std::string Text(DcmItem& item, const DcmTagKey& tag) {
  DcmElement* element = nullptr;
  if (item.findAndGetElement(tag, element).bad() || element == nullptr ||
      element->getLengthField() > kMaxAttributeBytes) {
    return {};
  }
  OFString value;
  if (element->getOFStringArray(value).good()) return std::string(value.c_str());
  return {};
}

int Integer(DcmItem& item, const DcmTagKey& tag) {
  const std::string text = Text(item, tag);
  if (text.empty()) return 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  return end == text.c_str() ? 0 : static_cast<int>(v);
}

// Extracts InstanceMeta from a parsed dataset (and its meta header, if any).
Result<InstanceMeta> Extract(DcmDataset* dataset, DcmMetaInfo* meta_info) {
  if (dataset == nullptr || dataset->card() == 0) {
    return InvalidArgument("not DICOM: empty dataset");
  }

  InstanceMeta meta;
  meta.study_uid = StudyUid(Text(*dataset, DCM_StudyInstanceUID));
  meta.series_uid = SeriesUid(Text(*dataset, DCM_SeriesInstanceUID));
  meta.sop_instance_uid = SopInstanceUid(Text(*dataset, DCM_SOPInstanceUID));
  meta.sop_class_uid = SopClassUid(Text(*dataset, DCM_SOPClassUID));
  if (meta_info != nullptr) meta.transfer_syntax_uid = Text(*meta_info, DCM_TransferSyntaxUID);
  if (meta.transfer_syntax_uid.empty()) {
    meta.transfer_syntax_uid = DcmXfer(dataset->getOriginalXfer()).getXferID();
  }

  std::string missing;
  if (meta.study_uid.empty()) missing += " StudyInstanceUID";
  if (meta.series_uid.empty()) missing += " SeriesInstanceUID";
  if (meta.sop_instance_uid.empty()) missing += " SOPInstanceUID";
  if (meta.sop_class_uid.empty()) missing += " SOPClassUID";
  if (!missing.empty()) {
    return InvalidArgument("not a DICOM instance or truncated; missing" + missing);
  }

  meta.patient_id = Text(*dataset, DCM_PatientID);
  meta.patient_name = Text(*dataset, DCM_PatientName);
  meta.accession_number = Text(*dataset, DCM_AccessionNumber);
  meta.study_date = Text(*dataset, DCM_StudyDate);
  meta.modality = Text(*dataset, DCM_Modality);
  meta.body_part = Text(*dataset, DCM_BodyPartExamined);
  meta.study_description = Text(*dataset, DCM_StudyDescription);
  meta.series_description = Text(*dataset, DCM_SeriesDescription);
  meta.series_number = Integer(*dataset, DCM_SeriesNumber);
  meta.instance_number = Integer(*dataset, DCM_InstanceNumber);

  for (unsigned long i = 0; i < dataset->card(); ++i) {
    DcmElement* element = dataset->getElement(i);
    if (element == nullptr || element->getTag().isPrivate() ||
        !(IsTextVr(element->ident()) || IsNumericVr(element->ident()))) {
      continue;
    }
    if (element->getLengthField() > kMaxAttributeBytes) continue;
    DcmTag tag = element->getTag();
    const char* keyword = tag.getTagName();
    if (keyword == nullptr || tag.getVR().getEVR() == EVR_UNKNOWN ||
        std::string_view(keyword) == DcmTag_ERROR_TagName) {
      continue;
    }
    OFString value;
    if (element->getOFStringArray(value).good()) meta.attributes[keyword] = value.c_str();
  }
  return meta;
}

// Errors name only the problem; callers prefix the file.
Result<InstanceMeta> ReadMeta(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return NotFound("no such file");
  if (!std::filesystem::is_regular_file(file, ec)) {
    return InvalidArgument("not a regular file");
  }

  ASSIGN_OR_RETURN(std::unique_ptr<InflatedDataset> inflated, InflateIfDeflated(file));
  if (inflated != nullptr) {
    DcmDataset dataset;
    const OFCondition cond = dataset.loadFile(inflated->path().c_str(), EXS_LittleEndianExplicit,
                                              EGL_noChange, kMaxLoadedValueBytes);
    if (cond.bad()) {
      return InvalidArgument(std::string("not DICOM or truncated: ") + cond.text());
    }
    return Extract(&dataset, &inflated->meta());
  }

  DcmFileFormat format;
  // Parses the whole structure but loads no value over kMaxLoadedValueBytes: pixel data stays
  // on disk (skipped by seeking), and a file truncated anywhere, pixel data included, fails.
  const OFCondition cond = format.loadFile(file.c_str(), EXS_Unknown, EGL_noChange,
                                           kMaxLoadedValueBytes, ERM_autoDetect);
  if (cond.bad()) {
    return InvalidArgument(std::string("not DICOM or truncated: ") + cond.text());
  }
  return Extract(format.getDataset(), format.getMetaInfo());
}

}  // namespace

Result<InstanceMeta> ReadInstanceMeta(const std::filesystem::path& file) {
  Result<InstanceMeta> meta = ReadMeta(file);
  if (!meta.ok()) return meta.status().WithContext("read instance " + file.string());
  return meta;
}

MetaScan ScanInstanceMetas(const std::filesystem::path& path) {
  MetaScan scan;
  auto read_one = [&scan](const std::filesystem::path& file) {
    Result<InstanceMeta> meta = ReadMeta(file);
    if (meta.ok()) {
      scan.instances.emplace_back(file, std::move(meta).value());
    } else {
      scan.errors.push_back(file.string() + ": " + meta.status().message());
    }
  };
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    read_one(path);
    return scan;
  }
  if (!std::filesystem::is_directory(path, ec)) {
    scan.errors.push_back(path.string() + ": not a file or directory");
    return scan;
  }
  std::filesystem::recursive_directory_iterator it(
      path, std::filesystem::directory_options::skip_permission_denied, ec);
  if (ec) {
    scan.errors.push_back(path.string() + ": " + ec.message());
    return scan;
  }
  std::vector<std::filesystem::path> files;
  for (const std::filesystem::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) {
      scan.errors.push_back(path.string() + ": " + ec.message());
      break;
    }
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) read_one(file);
  return scan;
}

}  // namespace conduit
