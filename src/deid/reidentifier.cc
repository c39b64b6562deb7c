#include "deid/reidentifier.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <set>
#include <string>
#include <system_error>

#include "deid/dataset_io.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using deid_io::LoadLazily;
using deid_io::SaveAtomically;
using deid_io::StringOf;

std::vector<std::string> SplitTrimmed(const std::string& value) {
  std::vector<std::string> values = deid_io::SplitValues(value);
  for (auto& v : values) v = deid_io::TrimValue(std::move(v));
  return values;
}

// Attributes that, inside a sequence, point at instances, series or studies the tool was
// given: each must be known to the crosswalk unless the tool made the object it names.
bool IsReference(const DcmTagKey& key) {
  return key == DCM_ReferencedSOPInstanceUID || key == DCM_StudyInstanceUID ||
         key == DCM_SeriesInstanceUID || key == DCM_ReferencedFrameOfReferenceUID ||
         key == DCM_FrameOfReferenceUID;
}

std::string TagText(const DcmTagKey& key) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "(%04X,%04X)", key.getGroup(), key.getElement());
  return buf;
}

// Visits every UI element at every depth; `fn(element, depth)`.
template <typename Fn>
void ForEachUid(DcmItem& item, int depth, Fn&& fn) {
  for (unsigned long i = 0; i < item.card(); ++i) {
    DcmElement* element = item.getElement(i);
    if (element->ident() == EVR_SQ) {
      auto* sequence = static_cast<DcmSequenceOfItems*>(element);
      for (unsigned long j = 0; j < sequence->card(); ++j)
        ForEachUid(*sequence->getItem(j), depth + 1, fn);
    } else if (element->ident() == EVR_UI) {
      fn(*element, depth);
    }
  }
}

// The patient and study identity a result takes from the original study.
const DcmTagKey kIdentity[] = {
    DCM_SpecificCharacterSet,   DCM_PatientName,      DCM_PatientID,  DCM_IssuerOfPatientID,
    DCM_PatientBirthDate,       DCM_PatientSex,       DCM_PatientAge, DCM_OtherPatientIDsSequence,
    DCM_AccessionNumber,        DCM_StudyID,          DCM_StudyDate,  DCM_StudyTime,
    DCM_ReferringPhysicianName, DCM_StudyDescription,
};

// Marks of de-identification that no longer hold once the result names the patient.
const DcmTagKey kDeidMarks[] = {DCM_PatientIdentityRemoved, DCM_DeidentificationMethod,
                                DCM_DeidentificationMethodCodeSequence,
                                DCM_LongitudinalTemporalInformationModified};

}  // namespace

bool IsPseudonymUid(std::string_view uid) {
  constexpr std::string_view kRoot = "2.25.";
  if (!uid.starts_with(kRoot) || uid.size() == kRoot.size() || uid.size() > kRoot.size() + 39)
    return false;
  unsigned __int128 value = 0;
  for (char c : uid.substr(kRoot.size())) {
    if (c < '0' || c > '9') return false;
    unsigned __int128 next = value * 10 + static_cast<unsigned>(c - '0');
    if (next / 10 != value) return false;  // more than 128 bits
    value = next;
  }
  const unsigned version = static_cast<unsigned>((value >> 76) & 0xF);
  const unsigned variant = static_cast<unsigned>((value >> 62) & 0x3);
  const unsigned mark = static_cast<unsigned>(value & 0xFFFF);
  return mark == 0xC0DE && version == 8 && variant == 2;
}

Reidentifier::Reidentifier(CrosswalkLookup lookup) : lookup_(std::move(lookup)) {}

Result<std::optional<std::string>> Reidentifier::OriginalStudyOf(const fs::path& result) const {
  ASSIGN_OR_RETURN(auto loaded, LoadLazily(result));
  std::string study = StringOf(loaded->dataset(), DCM_StudyInstanceUID);
  if (study.empty()) return std::optional<std::string>();
  ASSIGN_OR_RETURN(auto originals, lookup_({study}));
  auto it = originals.find(study);
  if (it == originals.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Result<ReidOutcome> Reidentifier::ReidentifyFile(const fs::path& in, const fs::path& out,
                                                 const fs::path& original_instance) const {
  ASSIGN_OR_RETURN(auto loaded, LoadLazily(in));
  DcmDataset& dataset = loaded->dataset();

  std::set<std::string> uids;
  ForEachUid(dataset, 0, [&](DcmElement& element, int) {
    OFString value;
    element.getOFStringArray(value);
    for (auto& v : SplitTrimmed(std::string(value.c_str(), value.length())))
      if (!v.empty()) uids.insert(v);
  });
  ASSIGN_OR_RETURN(auto originals, lookup_(std::vector<std::string>(uids.begin(), uids.end())));

  const std::string pseudo_study = StringOf(dataset, DCM_StudyInstanceUID);
  auto study = originals.find(pseudo_study);
  if (study == originals.end())
    return InvalidArgument("the result's Study Instance UID is not a study this trust sent");

  ReidOutcome outcome;
  outcome.study_uid = study->second;
  Status problem;
  ForEachUid(dataset, 0, [&](DcmElement& element, int depth) {
    if (!problem.ok()) return;
    OFString value;
    element.getOFStringArray(value);
    std::vector<std::string> values = SplitTrimmed(std::string(value.c_str(), value.length()));
    bool changed = false;
    for (auto& v : values) {
      auto it = originals.find(v);
      if (it != originals.end()) {
        v = it->second;
        changed = true;
        ++outcome.uids_restored;
      } else if (depth > 0 && IsReference(element.getTag()) && IsPseudonymUid(v)) {
        // A pseudonym this trust never issued: the result points at nothing we sent.
        problem = InvalidArgument("the result references an unknown instance in " +
                                  TagText(element.getTag()) + " " +
                                  DcmTag(element.getTag()).getTagName());
      }
    }
    if (!changed) return;
    element.putString(deid_io::JoinValues(values).c_str());
  });
  RETURN_IF_ERROR(problem);

  auto original = LoadLazily(original_instance);
  if (!original.ok())
    return DataLoss("the original instance is not readable: " + original.status().message());
  DcmDataset& source = (*original)->dataset();
  for (const DcmTagKey& key : kIdentity) {
    delete dataset.remove(key);
    DcmElement* element = nullptr;
    if (source.findAndGetElement(key, element).good() && element != nullptr) {
      dataset.insert(static_cast<DcmElement*>(element->clone()), /*replaceOld=*/true);
      ++outcome.identity_attributes_restored;
    }
  }
  for (const DcmTagKey& key : kDeidMarks) delete dataset.remove(key);

  RETURN_IF_ERROR(SaveAtomically(loaded->file, loaded->xfer, out, /*zero_preamble=*/false));
  return outcome;
}

}  // namespace conduit
