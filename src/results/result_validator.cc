#include "results/result_validator.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcstack.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <string_view>

#include "dicom/deflated_file.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

// Values longer than this stay on disk until asked for: pixel data is never loaded.
constexpr Uint32 kMaxLoadedValueBytes = 4096;
// Deeper SR content trees are refused rather than walked (a tree is rarely over ten deep).
constexpr int kMaxContentDepth = 64;

struct ResultClass {
  const char* uid;
  const char* kind;
};
constexpr ResultClass kResultClasses[] = {
    {UID_ComprehensiveSRStorage, "sr"},
    {UID_EnhancedSRStorage, "sr"},
    {UID_Comprehensive3DSRStorage, "sr"},
    {UID_SegmentationStorage, "seg"},
    {UID_GrayscaleSoftcopyPresentationStateStorage, "gsps"},
    {UID_KeyObjectSelectionDocumentStorage, "kos"},
    {UID_SecondaryCaptureImageStorage, "sc"},
    {UID_MultiframeSingleBitSecondaryCaptureImageStorage, "sc"},
    {UID_MultiframeGrayscaleByteSecondaryCaptureImageStorage, "sc"},
    {UID_MultiframeGrayscaleWordSecondaryCaptureImageStorage, "sc"},
    {UID_MultiframeTrueColorSecondaryCaptureImageStorage, "sc"},
    {UID_ParametricMapStorage, "parametric_map"},
};

// A coded entry (scheme, value, meaning); value is Code Value, Long Code Value or URN.
struct Code {
  std::string scheme, value, meaning;
  bool Is(std::string_view v, std::string_view s) const { return value == v && scheme == s; }
  bool complete() const { return !scheme.empty() && !value.empty() && !meaning.empty(); }
};

std::string Str(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  if (item.findAndGetOFStringArray(tag, v).bad()) return {};
  return v.c_str();
}

// The items of a sequence of `item` (not searched deeper); empty if absent.
std::vector<DcmItem*> Items(DcmItem& item, const DcmTagKey& tag) {
  std::vector<DcmItem*> out;
  DcmSequenceOfItems* seq = nullptr;
  if (item.findAndGetSequence(tag, seq).bad() || seq == nullptr) return out;
  for (unsigned long i = 0; i < seq->card(); ++i) out.push_back(seq->getItem(i));
  return out;
}

bool Has(DcmItem& item, const DcmTagKey& tag) { return item.tagExists(tag); }

std::optional<Code> ReadCode(DcmItem& item, const DcmTagKey& sequence) {
  std::vector<DcmItem*> items = Items(item, sequence);
  if (items.empty()) return std::nullopt;
  DcmItem& c = *items.front();
  Code code;
  code.value = Str(c, DCM_CodeValue);
  if (code.value.empty()) code.value = Str(c, DCM_LongCodeValue);
  if (code.value.empty()) code.value = Str(c, DCM_URNCodeValue);
  code.scheme = Str(c, DCM_CodingSchemeDesignator);
  code.meaning = Str(c, DCM_CodeMeaning);
  return code;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

bool MeaningHas(const Code& code, std::initializer_list<std::string_view> words) {
  const std::string meaning = Lower(code.meaning);
  for (std::string_view w : words) {
    if (meaning.find(w) != std::string::npos) return true;
  }
  return false;
}

// Checks what a result refers to against the job's inputs (and the tool's own objects,
// where a kind may refer to them), and remembers the first input referred to.
class References {
 public:
  References(const ResultContext& context, std::string own_sop)
      : context_(context), own_sop_(std::move(own_sop)) {
    for (const auto& [sop, input] : context.inputs) input_series_.insert(input.series_uid.str());
  }

  bool IsInputSeries(const std::string& series) const { return input_series_.contains(series); }

  // `where` names the attribute path; `allow_results` lets the reference name an object of
  // this tool in the study (a result kind outside the input series, received or not yet).
  Status Check(const std::string& where, const std::string& sop_class, const std::string& sop,
               const std::string& series, const std::string& study, bool allow_results) {
    if (sop.empty()) return InvalidArgument(where + ": Referenced SOP Instance UID missing");
    if (!study.empty() && study != context_.study_uid.str()) {
      return InvalidArgument(where + ": StudyInstanceUID is not the job's study");
    }
    auto input = context_.inputs.find(SopInstanceUid(sop));
    if (input != context_.inputs.end()) {
      if (!sop_class.empty() && sop_class != input->second.sop_class_uid.str()) {
        return InvalidArgument(where +
                               ": Referenced SOP Class UID differs from the input instance's");
      }
      if (!series.empty() && series != input->second.series_uid.str()) {
        return InvalidArgument(where + ": SeriesInstanceUID differs from the input instance's");
      }
      ++input_references_;
      if (first_input_.empty()) first_input_ = sop;
      return Status::Ok();
    }
    if (allow_results) {
      if (sop == own_sop_) return Status::Ok();
      auto known = context_.job_results.find(SopInstanceUid(sop));
      if (known != context_.job_results.end()) {
        if (!sop_class.empty() && sop_class != known->second.str()) {
          return InvalidArgument(where +
                                 ": Referenced SOP Class UID differs from the job result's");
        }
        return Status::Ok();
      }
      if (!ResultKindOf(SopClassUid(sop_class)).empty() &&
          (series.empty() || !IsInputSeries(series))) {
        return Status::Ok();  // another result of this tool, not received yet
      }
    }
    return InvalidArgument(where +
                           ": Referenced SOP Instance UID is not one of the job's input instances");
  }

  int input_references() const { return input_references_; }
  const std::string& first_input() const { return first_input_; }

 private:
  const ResultContext& context_;
  std::string own_sop_;
  std::set<std::string> input_series_;
  int input_references_ = 0;
  std::string first_input_;
};

std::string Indexed(const std::string& where, const char* name, size_t i) {
  return where + (where.empty() ? "" : " ") + name + "[" + std::to_string(i + 1) + "]";
}

// Items naming instances (Referenced SOP Class/Instance UID) directly in `sequence` of `item`.
Status CheckInstanceItems(References& refs, DcmItem& item, const DcmTagKey& sequence,
                          const char* name, const std::string& where, const std::string& series,
                          const std::string& study, bool allow_results) {
  std::vector<DcmItem*> items = Items(item, sequence);
  for (size_t i = 0; i < items.size(); ++i) {
    RETURN_IF_ERROR(refs.Check(Indexed(where, name, i), Str(*items[i], DCM_ReferencedSOPClassUID),
                               Str(*items[i], DCM_ReferencedSOPInstanceUID), series, study,
                               allow_results));
  }
  return Status::Ok();
}

// Series > instances hierarchies: ReferencedSeriesSequence > `instances` (Referenced
// Instance Sequence for SEG and parametric maps, Referenced Image Sequence for GSPS).
Status CheckSeriesItems(References& refs, DcmItem& item, const DcmTagKey& instances,
                        const char* instances_name, const std::string& where,
                        const std::string& study, bool allow_results, bool require_instances) {
  std::vector<DcmItem*> series = Items(item, DCM_ReferencedSeriesSequence);
  for (size_t i = 0; i < series.size(); ++i) {
    const std::string here = Indexed(where, "ReferencedSeriesSequence", i);
    const std::string series_uid = Str(*series[i], DCM_SeriesInstanceUID);
    if (series_uid.empty()) return InvalidArgument(here + ": SeriesInstanceUID missing");
    if (require_instances && Items(*series[i], instances).empty()) {
      return InvalidArgument(here + ": " + instances_name + " missing or empty");
    }
    RETURN_IF_ERROR(CheckInstanceItems(refs, *series[i], instances, instances_name, here,
                                       series_uid, study, allow_results));
  }
  return Status::Ok();
}

// Shared and per-frame functional groups: DerivationImageSequence > SourceImageSequence.
Status CheckDerivations(References& refs, DcmItem& dataset) {
  for (const auto& [tag, name] :
       {std::pair{DCM_SharedFunctionalGroupsSequence, "SharedFunctionalGroupsSequence"},
        std::pair{DCM_PerFrameFunctionalGroupsSequence, "PerFrameFunctionalGroupsSequence"}}) {
    std::vector<DcmItem*> groups = Items(dataset, tag);
    for (size_t g = 0; g < groups.size(); ++g) {
      const std::string group = Indexed("", name, g);
      std::vector<DcmItem*> derivations = Items(*groups[g], DCM_DerivationImageSequence);
      for (size_t d = 0; d < derivations.size(); ++d) {
        RETURN_IF_ERROR(CheckInstanceItems(refs, *derivations[d], DCM_SourceImageSequence,
                                           "SourceImageSequence",
                                           Indexed(group, "DerivationImageSequence", d), "", "",
                                           /*allow_results=*/false));
      }
    }
  }
  return Status::Ok();
}

// CurrentRequestedProcedureEvidenceSequence: study > series > instances.
Status CheckEvidence(References& refs, DcmItem& dataset, bool required) {
  std::vector<DcmItem*> studies = Items(dataset, DCM_CurrentRequestedProcedureEvidenceSequence);
  if (required && studies.empty()) {
    return InvalidArgument("CurrentRequestedProcedureEvidenceSequence missing or empty");
  }
  for (size_t s = 0; s < studies.size(); ++s) {
    const std::string where = Indexed("", "CurrentRequestedProcedureEvidenceSequence", s);
    const std::string study = Str(*studies[s], DCM_StudyInstanceUID);
    if (study.empty()) return InvalidArgument(where + ": StudyInstanceUID missing");
    std::vector<DcmItem*> series = Items(*studies[s], DCM_ReferencedSeriesSequence);
    for (size_t i = 0; i < series.size(); ++i) {
      const std::string here = Indexed(where, "ReferencedSeriesSequence", i);
      const std::string series_uid = Str(*series[i], DCM_SeriesInstanceUID);
      if (series_uid.empty()) return InvalidArgument(here + ": SeriesInstanceUID missing");
      RETURN_IF_ERROR(CheckInstanceItems(refs, *series[i], DCM_ReferencedSOPSequence,
                                         "ReferencedSOPSequence", here, series_uid, study,
                                         /*allow_results=*/true));
    }
  }
  return Status::Ok();
}

FindingRecord NewFinding(const std::string& kind, const std::string& result_sop) {
  FindingRecord f;
  f.kind = kind;
  f.result_sop_uid = SopInstanceUid(result_sop);
  return f;
}

void SetConcept(FindingRecord& f, const Code& code) {
  f.concept_scheme = code.scheme;
  f.concept_value = code.value;
  f.concept_meaning = code.meaning;
}

void SetValue(FindingRecord& f, const Code& code) {
  f.value_scheme = code.scheme;
  f.value_code = code.value;
  f.value_meaning = code.meaning;
}

// Walks an SR content tree (TID 1500 and any other): checks measurement groups and every
// reference, and collects findings, measurements, scores and triage flags.
class ContentWalker {
 public:
  ContentWalker(References& refs, std::string result_sop)
      : refs_(refs), result_sop_(std::move(result_sop)) {}

  // Walks the ContentSequence of `parent`, whose position is `where` ("content item 1.2");
  // `first_reference` receives the first IMAGE/COMPOSITE reference found below `parent`.
  Status Walk(DcmItem& parent, const std::string& where, int depth, std::string& first_reference) {
    if (depth > kMaxContentDepth) {
      return InvalidArgument(where + ": content tree deeper than " +
                             std::to_string(kMaxContentDepth) + " levels");
    }
    std::vector<DcmItem*> items = Items(parent, DCM_ContentSequence);
    for (size_t i = 0; i < items.size(); ++i) {
      DcmItem& item = *items[i];
      const std::string here = where + "." + std::to_string(i + 1);
      if (Has(item, DCM_ReferencedContentItemIdentifier)) continue;  // by-reference: no content
      const std::string type = Str(item, DCM_ValueType);
      const std::optional<Code> concept_name = ReadCode(item, DCM_ConceptNameCodeSequence);
      const size_t first_finding = findings_.size();
      std::string reference;
      if (type == "CONTAINER" && concept_name && concept_name->Is("125007", "DCM")) {
        RETURN_IF_ERROR(CheckMeasurementGroup(item, here));
      } else if (type == "CODE" && concept_name) {
        RETURN_IF_ERROR(OnCode(item, *concept_name, here));
      } else if (type == "NUM" && concept_name) {
        RETURN_IF_ERROR(OnNum(item, *concept_name, here));
      } else if (type == "IMAGE" || type == "COMPOSITE" || type == "WAVEFORM") {
        std::vector<DcmItem*> sops = Items(item, DCM_ReferencedSOPSequence);
        if (sops.empty()) return InvalidArgument(here + ": ReferencedSOPSequence missing");
        reference = Str(*sops.front(), DCM_ReferencedSOPInstanceUID);
        RETURN_IF_ERROR(refs_.Check(here + " ReferencedSOPSequence",
                                    Str(*sops.front(), DCM_ReferencedSOPClassUID), reference, "",
                                    "", /*allow_results=*/true));
      } else if (type == "UIDREF" && concept_name && concept_name->Is("121232", "DCM")) {
        if (!refs_.IsInputSeries(Str(item, DCM_UID))) {
          return InvalidArgument(here +
                                 ": Source series for segmentation (121232, DCM) is not one of "
                                 "the job's input series");
        }
      }
      std::string below;
      RETURN_IF_ERROR(Walk(item, here, depth + 1, below));
      if (reference.empty()) reference = below;
      // What an item reports is about the first image referenced in or below it (a
      // measurement group's image or segment, a NUM's SCOORD's image).
      for (size_t k = first_finding; k < findings_.size(); ++k) {
        if (findings_[k].referenced_sop_uid.empty()) findings_[k].referenced_sop_uid = reference;
      }
      if (first_reference.empty()) first_reference = reference;
      if (type == "CONTAINER" && concept_name && concept_name->Is("125007", "DCM")) {
        for (size_t k = first_finding; k < findings_.size(); ++k) {
          if (findings_[k].tracking_id.empty()) findings_[k].tracking_id = tracking_id_;
        }
        tracking_id_.clear();
      }
    }
    return Status::Ok();
  }

  std::vector<FindingRecord>& findings() { return findings_; }

 private:
  // Measurement Groups (TID 1501, 1410, 1411) must be tracked (IHE AIR): a Tracking
  // Identifier (112039) and a Tracking Unique Identifier (112040) among their children.
  Status CheckMeasurementGroup(DcmItem& group, const std::string& where) {
    std::string id, uid;
    for (DcmItem* child : Items(group, DCM_ContentSequence)) {
      const std::optional<Code> name = ReadCode(*child, DCM_ConceptNameCodeSequence);
      if (!name) continue;
      if (name->Is("112039", "DCM")) id = Str(*child, DCM_TextValue);
      if (name->Is("112040", "DCM")) uid = Str(*child, DCM_UID);
    }
    if (id.empty()) {
      return InvalidArgument(where +
                             ": Measurement Group without Tracking Identifier (112039, DCM)");
    }
    if (uid.empty()) {
      return InvalidArgument(
          where + ": Measurement Group without Tracking Unique Identifier (112040, DCM)");
    }
    tracking_id_ = id;
    return Status::Ok();
  }

  Status OnCode(DcmItem& item, const Code& name, const std::string& where) {
    const std::optional<Code> value = ReadCode(item, DCM_ConceptCodeSequence);
    if (!value || !value->complete()) {
      return InvalidArgument(where + ": CODE content item without a complete ConceptCodeSequence");
    }
    std::string kind;
    if (name.Is("121071", "DCM")) {
      kind = "finding";
    } else if (MeaningHas(name, {"triage", "priority", "urgen"})) {
      kind = "triage";
    } else {
      return Status::Ok();
    }
    FindingRecord f = NewFinding(kind, result_sop_);
    SetConcept(f, name);
    SetValue(f, *value);
    findings_.push_back(std::move(f));
    return Status::Ok();
  }

  Status OnNum(DcmItem& item, const Code& name, const std::string& where) {
    std::vector<DcmItem*> measured = Items(item, DCM_MeasuredValueSequence);
    if (measured.empty()) return Status::Ok();  // no value (a Numeric Value Qualifier says why)
    Float64 number = 0;
    if (measured.front()->findAndGetFloat64(DCM_NumericValue, number).bad()) {
      return InvalidArgument(where + ": NUM content item without a numeric Numeric Value");
    }
    const std::optional<Code> units = ReadCode(*measured.front(), DCM_MeasurementUnitsCodeSequence);
    if (!units || units->scheme != "UCUM" || units->value.empty()) {
      return InvalidArgument(where + ": NUM content item whose Measurement Units are not UCUM");
    }
    FindingRecord f = NewFinding(
        MeaningHas(name, {"score", "probability"}) ? "score" : "measurement", result_sop_);
    SetConcept(f, name);
    f.numeric_value = number;
    f.units = units->value;
    findings_.push_back(std::move(f));
    return Status::Ok();
  }

  References& refs_;
  std::string result_sop_;
  std::string tracking_id_;  // of the measurement group being walked
  std::vector<FindingRecord> findings_;
};

// What every kind must have: its SOP class, its identity in the job's study, a series of
// its own, a Modality consistent with the kind.
struct Identity {
  std::string sop_class, sop, series, kind, label;
};

Result<Identity> CheckIdentity(DcmItem& ds, const ResultContext& context) {
  Identity id;
  id.sop_class = Str(ds, DCM_SOPClassUID);
  if (id.sop_class.empty()) return InvalidArgument("SOPClassUID missing");
  id.kind = ResultKindOf(SopClassUid(id.sop_class));
  if (id.kind.empty()) {
    return InvalidArgument("SOP class " + id.sop_class + " is not an AI result kind");
  }
  id.label = id.kind == "sr"     ? "SR"
             : id.kind == "seg"  ? "SEG"
             : id.kind == "gsps" ? "GSPS"
             : id.kind == "kos"  ? "KOS"
             : id.kind == "sc"   ? "secondary capture"
                                 : "parametric map";
  auto fail = [&](const std::string& why) { return InvalidArgument(id.label + ": " + why); };
  id.sop = Str(ds, DCM_SOPInstanceUID);
  if (id.sop.empty()) return fail("SOPInstanceUID missing");
  const std::string study = Str(ds, DCM_StudyInstanceUID);
  if (study.empty()) return fail("StudyInstanceUID missing");
  if (study != context.study_uid.str()) return fail("StudyInstanceUID is not the job's study");
  if (context.inputs.contains(SopInstanceUid(id.sop))) {
    return fail("SOPInstanceUID is one of the job's input instances");
  }
  id.series = Str(ds, DCM_SeriesInstanceUID);
  if (id.series.empty()) return fail("SeriesInstanceUID missing");
  for (const auto& [sop, input] : context.inputs) {
    if (input.series_uid.str() == id.series) {
      return fail("SeriesInstanceUID is one of the job's input series (a result needs its own)");
    }
  }
  const std::string modality = Str(ds, DCM_Modality);
  if (modality.empty()) return fail("Modality missing");
  const char* expected = id.kind == "sr"     ? "SR"
                         : id.kind == "kos"  ? "KO"
                         : id.kind == "seg"  ? "SEG"
                         : id.kind == "gsps" ? "PR"
                                             : nullptr;
  if (expected != nullptr && modality != expected) {
    return fail(std::string("Modality is not ") + expected);
  }
  if (expected == nullptr &&
      (modality == "SR" || modality == "KO" || modality == "SEG" || modality == "PR")) {
    return fail("Modality " + modality + " is not one of an image");
  }
  return id;
}

Status ReadSrDocument(DcmItem& ds, DSRDocument& doc) {
  const OFCondition cond = doc.read(ds);
  if (cond.bad()) return InvalidArgument(std::string("not a valid SR document: ") + cond.text());
  return Status::Ok();
}

Status ValidateSr(DcmItem& ds, const Identity& id, References& refs, ValidatedResult& out) {
  DSRDocument doc;
  RETURN_IF_ERROR(ReadSrDocument(ds, doc));
  const std::optional<Code> title = ReadCode(ds, DCM_ConceptNameCodeSequence);
  if (!title || !title->Is("126000", "DCM")) {
    return InvalidArgument(
        "root content item is not an Imaging Measurement Report (126000, DCM) (TID 1500)");
  }
  OFString tid, resource;
  if (doc.getTree().getTemplateIdentification(tid, resource).good() && !tid.empty() &&
      (tid != "1500" || resource != "DCMR")) {
    return InvalidArgument("ContentTemplateSequence names TID " + std::string(tid.c_str()) + " (" +
                           resource.c_str() + "), not TID 1500 (DCMR)");
  }
  if (Items(ds, DCM_ContentSequence).empty()) {
    // TID 1500 makes language, observer context, procedure reported and the measurements
    // mandatory or conditional children of the root: an empty report is not one.
    return InvalidArgument("the report has no content items (ContentSequence missing or empty)");
  }
  RETURN_IF_ERROR(CheckEvidence(refs, ds, /*required=*/false));
  ContentWalker walker(refs, id.sop);
  std::string first;
  RETURN_IF_ERROR(walker.Walk(ds, "content item 1", 1, first));
  out.findings = std::move(walker.findings());
  return Status::Ok();
}

Status ValidateKos(DcmItem& ds, const Identity& id, References& refs, ValidatedResult& out) {
  DSRDocument doc;
  RETURN_IF_ERROR(ReadSrDocument(ds, doc));
  const std::optional<Code> title = ReadCode(ds, DCM_ConceptNameCodeSequence);
  if (!title || !title->complete()) {
    return InvalidArgument("ConceptNameCodeSequence (document title) missing or incomplete");
  }
  RETURN_IF_ERROR(CheckEvidence(refs, ds, /*required=*/true));
  ContentWalker walker(refs, id.sop);
  std::string first;
  RETURN_IF_ERROR(walker.Walk(ds, "content item 1", 1, first));
  FindingRecord flag = NewFinding("flag", id.sop);
  SetConcept(flag, *title);
  flag.referenced_sop_uid = !refs.first_input().empty() ? refs.first_input() : first;
  out.findings.push_back(std::move(flag));
  return Status::Ok();
}

Status CheckSegmentCode(DcmItem& segment, const DcmTagKey& tag, const char* name,
                        const std::string& where, Code& code) {
  std::optional<Code> read = ReadCode(segment, tag);
  if (!read || !read->complete()) {
    return InvalidArgument(where + ": " + name + " missing or incomplete");
  }
  code = *read;
  return Status::Ok();
}

// Frames and pixel data, from the attributes alone (the pixel data stays on disk).
Status CheckSegFrames(DcmDataset& ds) {
  Sint32 frames = 0;
  Uint16 rows = 0, columns = 0, bits = 0;
  if (ds.findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames <= 0) {
    return InvalidArgument("NumberOfFrames missing or not positive");
  }
  if (ds.findAndGetUint16(DCM_Rows, rows).bad() || rows == 0 ||
      ds.findAndGetUint16(DCM_Columns, columns).bad() || columns == 0) {
    return InvalidArgument("Rows or Columns missing or zero");
  }
  if (ds.findAndGetUint16(DCM_BitsAllocated, bits).bad() || (bits != 1 && bits != 8)) {
    return InvalidArgument("BitsAllocated is neither 1 (BINARY) nor 8 (FRACTIONAL)");
  }
  const std::vector<DcmItem*> per_frame = Items(ds, DCM_PerFrameFunctionalGroupsSequence);
  if (per_frame.size() != static_cast<size_t>(frames)) {
    return InvalidArgument("PerFrameFunctionalGroupsSequence does not have NumberOfFrames items");
  }
  DcmElement* pixels = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, pixels).bad() || pixels == nullptr) {
    return InvalidArgument("PixelData missing");
  }
  if (!DcmXfer(ds.getOriginalXfer()).isEncapsulated()) {
    const uint64_t needed =
        (static_cast<uint64_t>(frames) * rows * columns * bits + 7) / 8;  // frames packed
    if (pixels->getLength() < needed) {
      return InvalidArgument("PixelData is shorter than Rows x Columns x NumberOfFrames");
    }
  }
  return Status::Ok();
}

Status ValidateSeg(DcmDataset& ds, const Identity& id, References& refs, ValidatedResult& out) {
  const std::string type = Str(ds, DCM_SegmentationType);
  if (type != "BINARY" && type != "FRACTIONAL") {
    return InvalidArgument("SegmentationType missing or neither BINARY nor FRACTIONAL");
  }
  std::vector<DcmItem*> segments = Items(ds, DCM_SegmentSequence);
  if (segments.empty()) return InvalidArgument("SegmentSequence missing or empty");
  if (!Items(ds, DCM_StudiesContainingOtherReferencedInstancesSequence).empty()) {
    return InvalidArgument(
        "StudiesContainingOtherReferencedInstancesSequence: references "
        "another study");
  }
  RETURN_IF_ERROR(CheckSeriesItems(refs, ds, DCM_ReferencedInstanceSequence,
                                   "ReferencedInstanceSequence", "", "",
                                   /*allow_results=*/false, /*require_instances=*/true));
  RETURN_IF_ERROR(CheckDerivations(refs, ds));
  if (refs.input_references() == 0) {
    return InvalidArgument(
        "references no input image (ReferencedSeriesSequence, "
        "DerivationImageSequence)");
  }
  RETURN_IF_ERROR(CheckSegFrames(ds));
  for (size_t i = 0; i < segments.size(); ++i) {
    DcmItem& segment = *segments[i];
    const std::string where = Indexed("", "SegmentSequence", i);
    Uint16 number = 0;
    if (segment.findAndGetUint16(DCM_SegmentNumber, number).bad() || number == 0) {
      return InvalidArgument(where + ": SegmentNumber missing or zero");
    }
    if (Str(segment, DCM_SegmentLabel).empty()) {
      return InvalidArgument(where + ": SegmentLabel missing");
    }
    if (Str(segment, DCM_SegmentAlgorithmType).empty()) {
      return InvalidArgument(where + ": SegmentAlgorithmType missing");
    }
    Code category, property;
    RETURN_IF_ERROR(CheckSegmentCode(segment, DCM_SegmentedPropertyCategoryCodeSequence,
                                     "SegmentedPropertyCategoryCodeSequence", where, category));
    RETURN_IF_ERROR(CheckSegmentCode(segment, DCM_SegmentedPropertyTypeCodeSequence,
                                     "SegmentedPropertyTypeCodeSequence", where, property));
    FindingRecord f = NewFinding("finding", id.sop);
    SetConcept(f, category);
    SetValue(f, property);
    f.tracking_id = Str(segment, DCM_TrackingID);
    f.referenced_sop_uid = refs.first_input();
    out.findings.push_back(std::move(f));
  }
  return Status::Ok();
}

Status ValidateGsps(DcmItem& ds, References& refs) {
  if (Items(ds, DCM_ReferencedSeriesSequence).empty()) {
    return InvalidArgument("ReferencedSeriesSequence missing or empty");
  }
  RETURN_IF_ERROR(CheckSeriesItems(refs, ds, DCM_ReferencedImageSequence, "ReferencedImageSequence",
                                   "", "", /*allow_results=*/true,
                                   /*require_instances=*/true));
  std::vector<DcmItem*> annotations = Items(ds, DCM_GraphicAnnotationSequence);
  for (size_t i = 0; i < annotations.size(); ++i) {
    RETURN_IF_ERROR(CheckInstanceItems(refs, *annotations[i], DCM_ReferencedImageSequence,
                                       "ReferencedImageSequence",
                                       Indexed("", "GraphicAnnotationSequence", i), "", "",
                                       /*allow_results=*/true));
  }
  return Status::Ok();
}

// Secondary capture and parametric map: references are optional, but any there must resolve.
Status ValidateDerivedImage(DcmItem& ds, const Identity& id, References& refs,
                            ValidatedResult& out) {
  RETURN_IF_ERROR(CheckInstanceItems(refs, ds, DCM_SourceImageSequence, "SourceImageSequence", "",
                                     "", "", /*allow_results=*/false));
  RETURN_IF_ERROR(CheckInstanceItems(refs, ds, DCM_ReferencedImageSequence,
                                     "ReferencedImageSequence", "", "", "",
                                     /*allow_results=*/false));
  RETURN_IF_ERROR(CheckSeriesItems(refs, ds, DCM_ReferencedInstanceSequence,
                                   "ReferencedInstanceSequence", "", "", /*allow_results=*/false,
                                   /*require_instances=*/false));
  RETURN_IF_ERROR(CheckDerivations(refs, ds));
  if (refs.input_references() == 0) {
    out.warnings.push_back(id.label + " names no source image of the job");
  }
  return Status::Ok();
}

}  // namespace

std::string ResultKindOf(const SopClassUid& sop_class) {
  for (const ResultClass& c : kResultClasses) {
    if (sop_class.str() == c.uid) return c.kind;
  }
  return {};
}

namespace {

// A result file loaded for reading, values over kMaxLoadedValueBytes left on disk.
struct LoadedResult {
  std::unique_ptr<InflatedDataset> inflated;
  DcmFileFormat format;
  DcmDataset inflated_dataset;
  DcmDataset* ds = nullptr;
  OFCondition cond;
};

// Loads `file` into `out` (out.cond says how far it got). Errors: kNotFound if missing;
// kInvalidArgument if not a regular file; those of InflateIfDeflated.
Status Load(const fs::path& file, LoadedResult& out) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return NotFound("read result: no such file " + file.string());
  if (!fs::is_regular_file(file, ec)) return InvalidArgument("result is not a regular file");
  ASSIGN_OR_RETURN(out.inflated, InflateIfDeflated(file));
  if (out.inflated != nullptr) {
    out.cond = out.inflated_dataset.loadFile(out.inflated->path().c_str(), EXS_LittleEndianExplicit,
                                             EGL_noChange, kMaxLoadedValueBytes);
    out.ds = &out.inflated_dataset;
  } else {
    out.cond = out.format.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, kMaxLoadedValueBytes,
                                   ERM_autoDetect);
    out.ds = out.format.getDataset();
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<ObjectReference>> ReferencesOf(const fs::path& file) {
  LoadedResult loaded;
  RETURN_IF_ERROR(Load(file, loaded));
  if (loaded.cond.bad()) {
    return InvalidArgument(std::string("result is not parsable DICOM: ") + loaded.cond.text());
  }
  std::vector<ObjectReference> out;
  DcmStack stack;
  while (loaded.ds->nextObject(stack, OFTrue).good()) {
    DcmObject* object = stack.top();
    if (object->getTag() != DCM_ReferencedSOPInstanceUID || stack.card() < 2) continue;
    auto* item = dynamic_cast<DcmItem*>(stack.elem(1));
    if (item == nullptr) continue;
    const std::string sop = Str(*item, DCM_ReferencedSOPInstanceUID);
    if (sop.empty()) continue;
    out.push_back({SopClassUid(Str(*item, DCM_ReferencedSOPClassUID)), SopInstanceUid(sop)});
  }
  return out;
}

SopInstanceUid SopInstanceUidOf(const fs::path& file) {
  LoadedResult loaded;
  if (!Load(file, loaded).ok() || loaded.ds == nullptr) return SopInstanceUid("");
  // A read that stopped early (truncated) keeps the elements before the break.
  return SopInstanceUid(Str(*loaded.ds, DCM_SOPInstanceUID));
}

Result<ValidatedResult> ResultValidator::Validate(const fs::path& file,
                                                  const ResultContext& context) const {
  LoadedResult loaded;
  RETURN_IF_ERROR(Load(file, loaded));
  if (loaded.cond.bad()) {
    return InvalidArgument(std::string("result is not parsable DICOM: ") + loaded.cond.text());
  }
  DcmDataset* ds = loaded.ds;

  ASSIGN_OR_RETURN(Identity id, CheckIdentity(*ds, context));
  References refs(context, id.sop);
  ValidatedResult out;
  out.kind = id.kind;
  Status st;
  if (id.kind == "sr") {
    st = ValidateSr(*ds, id, refs, out);
  } else if (id.kind == "kos") {
    st = ValidateKos(*ds, id, refs, out);
  } else if (id.kind == "seg") {
    st = ValidateSeg(*ds, id, refs, out);
  } else if (id.kind == "gsps") {
    st = ValidateGsps(*ds, refs);
  } else {
    st = ValidateDerivedImage(*ds, id, refs, out);
  }
  if (!st.ok()) return st.WithContext(id.label);
  return out;
}

}  // namespace conduit
