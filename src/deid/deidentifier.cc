#include "deid/deidentifier.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcvrat.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/glob.h"
#include "deid/dataset_io.h"
#include "dicom/pixel_codecs.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using deid_io::JoinValues;
using deid_io::LoadLazily;
using deid_io::SplitValues;
using deid_io::StringOf;
using deid_io::TrimValue;

uint32_t TagOf(const DcmElement& element) {
  const DcmTag& tag = element.getTag();
  return (static_cast<uint32_t>(tag.getGroup()) << 16) | tag.getElement();
}

bool IsTextVr(DcmEVR vr) {
  switch (vr) {
    case EVR_PN:
    case EVR_LO:
    case EVR_SH:
    case EVR_ST:
    case EVR_LT:
    case EVR_UT:
    case EVR_UC:
      return true;
    default:
      return false;
  }
}

bool IsTemporalVr(DcmEVR vr) { return vr == EVR_DA || vr == EVR_DT || vr == EVR_TM; }

// Code attributes keep their meaning inside dummied or cleaned structured content.
bool IsCodeAttribute(uint32_t tag) {
  switch (tag) {
    case 0x00080100:
    case 0x00080102:
    case 0x00080103:
    case 0x00080104:
    case 0x00080119:
    case 0x00080120:
    case 0x0008010F:
    case 0x00080117:
    case 0x00080105:
    case 0x00080106:
    case 0x00080107:
    case 0x0008010B:
    case 0x0008010C:
    case 0x0008010D:
    case 0x00080118:
      return true;
    default:
      return false;
  }
}

std::string ToUpperAscii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Moves a DA value (YYYYMMDD, or a YYYY/YYYYMM prefix) back by `days`, keeping its precision.
std::string ShiftDate(const std::string& value, int days) {
  std::string digits = value;
  if (digits.size() < 4 || digits.size() > 8 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return "19000101";
  const size_t precision = digits.size();
  while (digits.size() < 8) digits += digits.size() == 4 || digits.size() == 6 ? "01" : "0";
  using namespace std::chrono;
  year_month_day ymd{year{std::stoi(digits.substr(0, 4))},
                     month{static_cast<unsigned>(std::stoi(digits.substr(4, 2)))},
                     day{static_cast<unsigned>(std::stoi(digits.substr(6, 2)))}};
  if (!ymd.ok()) return "19000101";
  year_month_day shifted{sys_days{ymd} - std::chrono::days{days}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d%02u%02u", static_cast<int>(shifted.year()),
                static_cast<unsigned>(shifted.month()), static_cast<unsigned>(shifted.day()));
  std::string out(buf);
  return out.substr(0, precision >= 8 ? 8 : precision);
}

// Moves a DT value's date part back by `days`; the time and offset parts are kept.
std::string ShiftDateTime(const std::string& value, int days) {
  if (value.size() < 4) return "19000101000000";
  size_t date_len = std::min<size_t>(8, value.size());
  for (size_t i = 0; i < date_len; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(value[i]))) {
      date_len = i;
      break;
    }
  }
  if (date_len < 4) return "19000101000000";
  return ShiftDate(value.substr(0, date_len), days) + value.substr(date_len);
}

std::string DummyFor(DcmEVR vr) {
  switch (vr) {
    case EVR_AE:
      return "ANON";
    case EVR_AS:
      return "000Y";
    case EVR_DA:
      return "19000101";
    case EVR_DT:
      return "19000101000000";
    case EVR_TM:
      return "000000";
    case EVR_DS:
    case EVR_IS:
      return "0";
    case EVR_UR:
      return "urn:anonymous";
    default:
      return "ANONYMOUS";
  }
}

bool IsDigitRunChar(char c) { return c == ' ' || c == '-' || c == '.' || c == '/'; }

// One instance's identifying strings, for cleaning text (Clean Descriptors and friends).
struct Identifiers {
  std::vector<std::string> tokens;  // upper case, each >= 2 characters
  std::string patient_id;           // original, for the pseudonyms and the date shift
};

// Replaces each identifying token, long digit run and e-mail-like word by 'X's.
std::string CleanText(const std::string& value, const Identifiers& ids) {
  std::string out = value;
  const std::string upper = ToUpperAscii(value);
  auto mask = [&](size_t pos, size_t len) {
    for (size_t i = pos; i < pos + len && i < out.size(); ++i) out[i] = 'X';
  };
  for (const auto& token : ids.tokens) {
    for (size_t pos = upper.find(token); pos != std::string::npos; pos = upper.find(token, pos + 1))
      mask(pos, token.size());
  }
  // Digit runs of >= 6 digits, possibly separated by single spaces, dashes, dots or slashes.
  for (size_t i = 0; i < out.size();) {
    if (!std::isdigit(static_cast<unsigned char>(value[i]))) {
      ++i;
      continue;
    }
    size_t j = i, digits = 0;
    while (j < value.size()) {
      if (std::isdigit(static_cast<unsigned char>(value[j]))) {
        ++digits;
        ++j;
      } else if (IsDigitRunChar(value[j]) && j + 1 < value.size() &&
                 std::isdigit(static_cast<unsigned char>(value[j + 1]))) {
        ++j;
      } else {
        break;
      }
    }
    if (digits >= 6) mask(i, j - i);
    i = j;
  }
  // Words with '@' (e-mail addresses, user@host).
  for (size_t at = value.find('@'); at != std::string::npos; at = value.find('@', at + 1)) {
    size_t b = at, e = at;
    while (b > 0 && !std::isspace(static_cast<unsigned char>(value[b - 1]))) --b;
    while (e < value.size() && !std::isspace(static_cast<unsigned char>(value[e]))) ++e;
    mask(b, e - b);
  }
  return out;
}

bool IsUltrasound(const std::string& modality, const std::string& sop_class) {
  // US Image (6.1, retired 6), US Multi-frame (3.1, retired 3), Enhanced US Volume (6.2),
  // Photoacoustic (6.3): the 6 and 3 families, not 66 (segmentation) or 30.
  for (std::string_view family : {"1.2.840.10008.5.1.4.1.1.6", "1.2.840.10008.5.1.4.1.1.3"}) {
    if (sop_class == family) return true;
    if (sop_class.starts_with(family) && sop_class.size() > family.size() &&
        sop_class[family.size()] == '.')
      return true;
  }
  return modality == "US";
}
bool IsSecondaryCapture(const std::string& sop_class) {
  return sop_class == "1.2.840.10008.5.1.4.1.1.7" ||
         sop_class.starts_with("1.2.840.10008.5.1.4.1.1.7.");
}
bool IsScannedDocument(const std::string& modality, const std::string& sop_class) {
  return modality == "DOC" || sop_class.starts_with("1.2.840.10008.5.1.4.1.1.104.");
}

// The walk over one instance: every attribute at every depth, with the instance's context.
class Walk {
 public:
  // How text without a table row is treated inside a sequence.
  enum class Mode { kNormal, kDummyText, kCleanText };

  Walk(const DeidSettings& settings, const Pseudonymiser& pseudonymiser, Identifiers ids,
       DeidOutcome& outcome)
      : settings_(settings),
        pseudonymiser_(pseudonymiser),
        ids_(std::move(ids)),
        outcome_(outcome) {
    modified_dates_ = settings_.options.Has(ProfileOption::kRetainLongitudinalModifiedDates);
    if (modified_dates_)
      shift_days_ = pseudonymiser_.DateShiftDays(ids_.patient_id, settings_.date_shift_min_days,
                                                 settings_.date_shift_max_days);
  }

  void Item(DcmItem& item, Mode mode) {
    RemoveOverlayGroupsWithoutData(item);
    std::set<std::pair<uint16_t, uint8_t>> kept_private_blocks;
    std::vector<uint32_t> creators;
    for (unsigned long i = 0; i < item.card();) {
      DcmElement* element = item.getElement(i);
      const uint32_t tag = TagOf(*element);
      const uint16_t group = static_cast<uint16_t>(tag >> 16);
      const uint16_t elem = static_cast<uint16_t>(tag & 0xFFFF);
      bool keep = true;
      if (elem == 0x0000) {
        keep = false;  // group lengths are recomputed or left out
        Count("X");
      } else if (group & 1) {
        if (elem >= 0x0010 && elem <= 0x00FF) {
          creators.push_back(tag);  // decided once the block's elements are known
        } else {
          keep = KeepPrivate(item, group, elem);
          if (keep) {
            kept_private_blocks.insert({group, static_cast<uint8_t>(elem >> 8)});
            // Safe private sequences are still walked: identifiers may hide in them.
            if (element->ident() == EVR_SQ) Sequence(*element, mode);
          }
          Count(keep ? "private_kept" : "private_removed");
        }
      } else {
        keep = Standard(*element, tag, mode);
      }
      if (keep) {
        ++i;
      } else {
        delete item.remove(i);
      }
    }
    for (uint32_t creator : creators) {
      const uint16_t group = static_cast<uint16_t>(creator >> 16);
      const uint8_t block = static_cast<uint8_t>(creator & 0xFF);
      if (kept_private_blocks.count({group, block})) continue;
      DcmTagKey key(group, static_cast<uint16_t>(creator & 0xFFFF));
      delete item.remove(key);
      Count("private_removed");
    }
  }

  const std::vector<PseudonymPair>& pairs() const { return pairs_; }
  bool modified_dates() const { return modified_dates_; }

 private:
  // An overlay whose data the profile removes goes whole: its other attributes alone would
  // describe an overlay that is not there.
  void RemoveOverlayGroupsWithoutData(DcmItem& item) {
    const ProfileEntry* overlay = FindProfileEntry(0x60003000);
    if (overlay == nullptr || ResolveAction(*overlay, settings_.options) != Action::kRemove) return;
    std::set<uint16_t> groups;
    for (unsigned long i = 0; i < item.card(); ++i) {
      const uint16_t group = item.getElement(i)->getTag().getGroup();
      if (group >= 0x6000 && group <= 0x601E && group % 2 == 0) groups.insert(group);
    }
    for (uint16_t group : groups) {
      for (unsigned long i = 0; i < item.card();) {
        if (item.getElement(i)->getTag().getGroup() == group) {
          delete item.remove(i);
          Count("X");
        } else {
          ++i;
        }
      }
    }
  }

  bool KeepPrivate(DcmItem& item, uint16_t group, uint16_t elem) {
    if (!settings_.options.Has(ProfileOption::kRetainSafePrivate)) return false;
    const uint8_t block = static_cast<uint8_t>(elem >> 8);
    const uint8_t low = static_cast<uint8_t>(elem & 0xFF);
    std::string creator = StringOf(item, DcmTagKey(group, block));
    if (creator.empty()) return false;
    for (const auto& safe : settings_.safe_private) {
      if (safe.group == group && safe.element == low && TrimValue(safe.creator) == creator)
        return true;
    }
    return false;
  }

  // Applies the profile to one standard attribute; false when it is to be removed.
  bool Standard(DcmElement& element, uint32_t tag, Mode mode) {
    // Command (0000) and file meta (0002) elements have no place in a dataset; a sender's
    // AE titles would otherwise travel there past the rebuilt file meta.
    const uint32_t group = tag >> 16;
    if (group == 0x0000 || group == 0x0002) {
      Count("misplaced_removed");
      return false;
    }
    const ProfileEntry* entry = FindProfileEntry(tag);
    if (entry == nullptr) {
      if (!IsDictionaryTag(tag)) {
        Count("unknown_removed");
        return false;
      }
      return Unlisted(element, tag, mode);
    }
    Action action = ResolveAction(*entry, settings_.options);
    if (action != Action::kKeep && action != Action::kRemove && Pseudonymise(element, tag))
      return true;
    Count(std::string(ActionName(action)));
    switch (action) {
      case Action::kKeep:
        if (element.ident() == EVR_SQ) Sequence(element, mode);
        return true;
      case Action::kRemove:
        return false;
      case Action::kZero:
        if (element.ident() == EVR_SQ) {
          static_cast<DcmSequenceOfItems&>(element).clear();
          return true;
        }
        return element.clear().good();
      case Action::kDummy:
        return Dummy(element);
      case Action::kClean:
        return Clean(element);
      case Action::kReplaceUid:
        if (element.ident() == EVR_SQ) {
          Sequence(element, mode);
          return true;
        }
        return ReplaceUids(element);
    }
    return false;
  }

  // A standard attribute with no row: kept, except text inside dummied or cleaned content.
  bool Unlisted(DcmElement& element, uint32_t tag, Mode mode) {
    const DcmEVR vr = element.ident();
    if (vr == EVR_SQ) {
      Count("K");
      Sequence(element, mode);
      return true;
    }
    const bool text = IsTextVr(vr) || IsTemporalVr(vr) || vr == EVR_AS;
    // Clean Graphics: overlay and curve text without a row (labels, descriptions) is cleaned.
    const uint16_t group = static_cast<uint16_t>(tag >> 16);
    if (IsTextVr(vr) && ((group & 0xFF00) == 0x6000 || (group & 0xFF00) == 0x5000) &&
        settings_.options.Has(ProfileOption::kCleanGraphics)) {
      Count("C");
      return Clean(element);
    }
    if (mode == Mode::kNormal || !text || IsCodeAttribute(tag)) {
      Count("K");
      return true;
    }
    if (mode == Mode::kDummyText) {
      Count("D");
      return Dummy(element);
    }
    Count("C");
    return Clean(element);
  }

  // Patient ID, Patient's Name and Accession Number get keyed pseudonyms.
  bool Pseudonymise(DcmElement& element, uint32_t tag) {
    if (tag != 0x00100020 && tag != 0x00100010 && tag != 0x00080050) return false;
    if (element.ident() == EVR_SQ) return false;
    OFString value;
    element.getOFStringArray(value);
    std::string original = TrimValue(std::string(value.c_str(), value.length()));
    std::string pseudonym;
    if (tag == 0x00100020) {
      pseudonym = pseudonymiser_.PatientId(original);
      if (!original.empty()) AddPair(PseudonymPair::Kind::kPatientId, pseudonym, original);
    } else if (tag == 0x00080050) {
      pseudonym = pseudonymiser_.AccessionNumber(original);
      if (!original.empty()) AddPair(PseudonymPair::Kind::kAccessionNumber, pseudonym, original);
    } else {
      pseudonym = original.empty() && ids_.patient_id.empty()
                      ? ""
                      : pseudonymiser_.PatientName(ids_.patient_id);
    }
    Count("pseudonymised");
    return element.putString(pseudonym.c_str()).good();
  }

  void Sequence(DcmElement& element, Mode mode) {
    auto& sequence = static_cast<DcmSequenceOfItems&>(element);
    for (unsigned long i = 0; i < sequence.card(); ++i) Item(*sequence.getItem(i), mode);
  }

  bool Dummy(DcmElement& element) {
    const DcmEVR vr = element.ident();
    switch (vr) {
      case EVR_SQ:
        Sequence(element, Mode::kDummyText);
        return true;
      case EVR_UI:
        return ReplaceUids(element);
      case EVR_US:
      case EVR_SS:
      case EVR_UL:
      case EVR_SL:
      case EVR_FL:
      case EVR_FD:
      case EVR_UV:
      case EVR_SV:
        return element.putString("0").good();
      case EVR_AT:
        return static_cast<DcmAttributeTag&>(element).putTagVal(DcmTagKey(0, 0)).good();
      case EVR_OB:
      case EVR_UN:
      case EVR_OW:
      case EVR_ox:
      case EVR_OD:
      case EVR_OF:
      case EVR_OL:
      case EVR_OV: {
        Uint8 zeros[8] = {};
        const Uint32 length = vr == EVR_OD || vr == EVR_OV   ? 8
                              : vr == EVR_OF || vr == EVR_OL ? 4
                                                             : 2;
        return element.putUint8Array(zeros, length).good();
      }
      default:
        return element.putString(DummyFor(vr).c_str()).good();
    }
  }

  bool Clean(DcmElement& element) {
    const DcmEVR vr = element.ident();
    if (vr == EVR_SQ) {
      Sequence(element, Mode::kCleanText);
      return true;
    }
    if (vr == EVR_UI) return ReplaceUids(element);
    OFString raw;
    if (IsTemporalVr(vr) || IsTextVr(vr) || vr == EVR_AE) element.getOFStringArray(raw);
    std::string value(raw.c_str(), raw.length());
    switch (vr) {
      case EVR_DA:
      case EVR_DT: {
        if (!modified_dates_) return Dummy(element);
        std::vector<std::string> values = SplitValues(value);
        for (auto& v : values) {
          v = TrimValue(v);
          if (!v.empty())
            v = vr == EVR_DA ? ShiftDate(v, shift_days_) : ShiftDateTime(v, shift_days_);
        }
        return element.putString(JoinValues(values).c_str()).good();
      }
      case EVR_TM:
      case EVR_CS:
      case EVR_AS:
      case EVR_DS:
      case EVR_IS:
      case EVR_US:
      case EVR_SS:
      case EVR_UL:
      case EVR_SL:
      case EVR_FL:
      case EVR_FD:
      case EVR_UV:
      case EVR_SV:
      case EVR_AT:
        return true;
      case EVR_AE: {
        std::vector<std::string> values = SplitValues(value);
        for (auto& v : values) {
          v = TrimValue(v);
          // 16 characters: "AE" and the pseudonymous ID's characters after its "P".
          if (!v.empty()) v = "AE" + pseudonymiser_.PatientId("ae\x1f" + v).substr(1, 14);
        }
        return element.putString(JoinValues(values).c_str()).good();
      }
      default: {
        if (IsTextVr(vr)) return element.putString(CleanText(value, ids_).c_str()).good();
        // Overlay and curve data under Clean Graphics: geometry, not text, kept. Other binary
        // values cannot be cleaned: removed.
        const uint16_t group = element.getTag().getGroup();
        return (group & 0xFF00) == 0x6000 || (group & 0xFF00) == 0x5000;
      }
    }
  }

  // Every UID of the element becomes its keyed pseudonym. Retain UIDs works through the
  // table (its K column), not here: a few UID rows have no K under it.
  bool ReplaceUids(DcmElement& element) {
    OFString raw;
    if (element.ident() == EVR_UN) {
      Uint8* bytes = nullptr;
      if (element.getUint8Array(bytes).bad() || bytes == nullptr) return false;
      raw = OFString(reinterpret_cast<const char*>(bytes), element.getLength());
    } else if (element.getOFStringArray(raw).bad()) {
      return false;
    }
    std::vector<std::string> values = SplitValues(std::string(raw.c_str(), raw.length()));
    for (auto& v : values) {
      v = TrimValue(v);
      if (v.empty()) continue;
      std::string pseudonym = pseudonymiser_.Uid(v);
      AddPair(PseudonymPair::Kind::kUid, pseudonym, v);
      v = pseudonym;
    }
    std::string joined = JoinValues(values);
    if (element.ident() == EVR_UN) {
      if (joined.size() % 2) joined.push_back('\0');
      return element
          .putUint8Array(reinterpret_cast<const Uint8*>(joined.data()),
                         static_cast<Uint32>(joined.size()))
          .good();
    }
    return element.putString(joined.c_str()).good();
  }

  void AddPair(PseudonymPair::Kind kind, const std::string& pseudonym,
               const std::string& original) {
    if (seen_.insert(pseudonym).second) pairs_.push_back({kind, pseudonym, original});
  }

  void Count(const std::string& what) { ++outcome_.actions[what]; }

  const DeidSettings& settings_;
  const Pseudonymiser& pseudonymiser_;
  Identifiers ids_;
  DeidOutcome& outcome_;
  bool modified_dates_ = false;
  int shift_days_ = 0;
  std::vector<PseudonymPair> pairs_;
  std::set<std::string> seen_;
};

Identifiers CollectIdentifiers(DcmDataset& dataset) {
  Identifiers ids;
  ids.patient_id = StringOf(dataset, DCM_PatientID);
  auto add = [&](std::string token) {
    token = ToUpperAscii(TrimValue(std::move(token)));
    if (token.size() >= 2) ids.tokens.push_back(std::move(token));
  };
  add(ids.patient_id);
  add(StringOf(dataset, DCM_AccessionNumber));
  add(StringOf(dataset, DCM_PatientBirthDate));
  for (const auto& value : SplitValues(StringOf(dataset, DCM_RETIRED_OtherPatientIDs))) add(value);
  // Name components and, in them, the words of each (given names, double-barrelled names).
  std::string name = StringOf(dataset, DCM_PatientName);
  std::string word;
  for (char c : name + "^") {
    if (c == '^' || c == '=' || c == ' ' || c == '-') {
      add(word);
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  DcmSequenceOfItems* others = nullptr;
  if (dataset.findAndGetSequence(DCM_OtherPatientIDsSequence, others).good() && others) {
    for (unsigned long i = 0; i < others->card(); ++i)
      add(StringOf(*others->getItem(i), DCM_PatientID));
  }
  // Longest first, so a token inside another is masked by the longer one too.
  std::sort(ids.tokens.begin(), ids.tokens.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return ids;
}

// Zeroes the configured rectangles of every frame. The dataset must be uncompressed.
Status BlankRegions(DcmDataset& dataset, const std::vector<PixelRect>& regions) {
  Uint16 rows = 0, columns = 0, bits = 0, samples = 1, planar = 0;
  dataset.findAndGetUint16(DCM_Rows, rows);
  dataset.findAndGetUint16(DCM_Columns, columns);
  dataset.findAndGetUint16(DCM_BitsAllocated, bits);
  dataset.findAndGetUint16(DCM_SamplesPerPixel, samples);
  dataset.findAndGetUint16(DCM_PlanarConfiguration, planar);
  Sint32 frames = 1;
  dataset.findAndGetSint32(DCM_NumberOfFrames, frames);
  if (frames < 1) frames = 1;
  if (bits != 8 && bits != 16)
    return FailedPrecondition("pixel data of " + std::to_string(bits) +
                              " bits allocated cannot be blanked");
  DcmElement* pixels = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, pixels).bad() || pixels == nullptr)
    return FailedPrecondition("no pixel data to blank");
  pixels->loadAllDataIntoMemory();
  Uint8* data = nullptr;
  if (bits == 8) {
    if (pixels->getUint8Array(data).bad()) return FailedPrecondition("pixel data not readable");
  } else {
    Uint16* words = nullptr;
    if (pixels->getUint16Array(words).bad()) return FailedPrecondition("pixel data not readable");
    data = reinterpret_cast<Uint8*>(words);
  }
  const size_t bytes_per_sample = bits / 8;
  const size_t plane = static_cast<size_t>(rows) * columns * bytes_per_sample;
  const size_t frame_bytes = plane * samples;
  if (data == nullptr || pixels->getLength() < frame_bytes * static_cast<size_t>(frames))
    return FailedPrecondition("pixel data is shorter than its rows, columns and frames say");
  for (Sint32 f = 0; f < frames; ++f) {
    Uint8* frame = data + frame_bytes * static_cast<size_t>(f);
    for (const PixelRect& r : regions) {
      const int x0 = std::max(0, r.x), y0 = std::max(0, r.y);
      const int x1 = std::min<int>(columns, r.x + r.width),
                y1 = std::min<int>(rows, r.y + r.height);
      for (int y = y0; y < y1; ++y) {
        if (x1 <= x0) break;
        for (Uint16 s = 0; s < samples; ++s) {
          if (planar == 1 || samples == 1) {
            Uint8* row = frame + s * plane + (static_cast<size_t>(y) * columns) * bytes_per_sample;
            std::fill(row + x0 * bytes_per_sample, row + x1 * bytes_per_sample, 0);
          } else {
            Uint8* row = frame + static_cast<size_t>(y) * columns * samples * bytes_per_sample;
            for (int x = x0; x < x1; ++x)
              std::fill_n(row + (static_cast<size_t>(x) * samples + s) * bytes_per_sample,
                          bytes_per_sample, 0);
          }
        }
      }
    }
  }
  return Status::Ok();
}

// DCMTK 3.6.7's JPEG decoder first walks each fragment's markers to find the bit depth, and
// never moves past a TEM marker (FF01): such a fragment would hang it. This walks the same way
// and says whether every fragment's walk ends (at a frame header, a bad marker or the end).
bool JpegWalkEnds(const Uint8* data, size_t length) {
  size_t offset = 0;
  while (offset + 4 < length) {
    const unsigned marker = (unsigned{data[offset]} << 8) | data[offset + 1];
    const size_t segment = ((size_t{data[offset + 2]} << 8) | data[offset + 3]) + 2;
    if (marker == 0xFF01) return false;
    const bool frame_header = marker >= 0xFFC0 && marker <= 0xFFCF && marker != 0xFFC4 &&
                              marker != 0xFFC8 && marker != 0xFFCC;
    if (frame_header) return true;
    if (marker == 0xFFFF) {
      offset += 1;
    } else if ((marker >= 0xFFD0 && marker <= 0xFFD9) ||
               (data[offset] == 0xFF && data[offset + 1] > 2 && data[offset + 1] <= 0xBF)) {
      offset += 2;
    } else if (marker >= 0xFFC4) {
      offset += segment;
    } else {
      return true;  // not a marker: the decoder stops with an error
    }
  }
  return true;
}

bool JpegFragmentsScannable(DcmDataset& dataset, E_TransferSyntax xfer) {
  const DcmXfer syntax(xfer);
  if (!syntax.isEncapsulated() || syntax.getXfer() == EXS_RLELossless ||
      syntax.getXfer() == EXS_JPEGLSLossless || syntax.getXfer() == EXS_JPEGLSLossy)
    return true;
  DcmElement* element = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) return true;
  DcmPixelSequence* fragments = nullptr;
  if (static_cast<DcmPixelData*>(element)
          ->getEncapsulatedRepresentation(xfer, nullptr, fragments)
          .bad() ||
      fragments == nullptr)
    return true;
  for (unsigned long i = 1; i < fragments->card(); ++i) {
    DcmPixelItem* item = nullptr;
    Uint8* data = nullptr;
    if (fragments->getItem(item, i).bad() || item == nullptr) continue;
    if (item->getUint8Array(data).bad() || data == nullptr) continue;
    if (!JpegWalkEnds(data, item->getLength())) return false;
  }
  return true;
}

void AddMethodCode(DcmItem& dataset, std::string_view code, std::string_view meaning) {
  DcmItem* item = nullptr;
  if (dataset.findOrCreateSequenceItem(DCM_DeidentificationMethodCodeSequence, item, -2).bad() ||
      item == nullptr)
    return;
  item->putAndInsertString(DCM_CodeValue, std::string(code).c_str());
  item->putAndInsertString(DCM_CodingSchemeDesignator, "DCM");
  item->putAndInsertString(DCM_CodeMeaning, std::string(meaning).c_str());
}

}  // namespace

Deidentifier::Deidentifier(DeidSettings settings, Pseudonymiser pseudonymiser)
    : settings_(std::move(settings)), pseudonymiser_(std::move(pseudonymiser)) {
  RegisterPixelDecoders();
}

Result<DeidOutcome> Deidentifier::DeidentifyFile(const fs::path& in, const fs::path& out) const {
  DeidOutcome outcome;
  std::error_code ec;
  outcome.bytes_in = fs::file_size(in, ec);
  if (ec) return ErrnoStatus(ec.value(), "reading " + in.string());
  ASSIGN_OR_RETURN(std::unique_ptr<deid_io::LoadedFile> loaded, LoadLazily(in));
  DcmDataset& dataset = loaded->dataset();
  const E_TransferSyntax original_xfer = loaded->xfer;
  if (original_xfer == EXS_Unknown)
    return InvalidArgument(in.string() + ": transfer syntax not recognised");
  if (StringOf(dataset, DCM_SOPClassUID).empty() || StringOf(dataset, DCM_SOPInstanceUID).empty())
    return InvalidArgument(in.string() + ": not a DICOM instance (no SOP Class or Instance UID)");

  // Burned-in text first: a refused instance is never written.
  const std::string modality = ToUpperAscii(StringOf(dataset, DCM_Modality));
  const std::string sop_class = StringOf(dataset, DCM_SOPClassUID);
  const PixelCleaningRule* cleaning = nullptr;
  for (const auto& rule : settings_.burned_in.cleaning) {
    if ((rule.modality.empty() || GlobMatch(rule.modality, modality)) &&
        (rule.manufacturer.empty() ||
         GlobMatch(rule.manufacturer, StringOf(dataset, DCM_Manufacturer))) &&
        (rule.model.empty() ||
         GlobMatch(rule.model, StringOf(dataset, DCM_ManufacturerModelName)))) {
      cleaning = &rule;
      break;
    }
  }
  if (cleaning == nullptr) {
    const auto& rules = settings_.burned_in;
    std::string refusal;
    if (rules.refuse_burned_in_annotation &&
        ToUpperAscii(StringOf(dataset, DCM_BurnedInAnnotation)) == "YES") {
      refusal = "Burned In Annotation is YES and no pixel cleaning rule matches";
    } else if (!rules.allow_ultrasound && IsUltrasound(modality, sop_class)) {
      refusal = "ultrasound may carry burned-in text; the policy does not allow it";
    } else if (!rules.allow_secondary_capture && IsSecondaryCapture(sop_class)) {
      refusal = "secondary capture may carry burned-in text; the policy does not allow it";
    } else if (!rules.allow_scanned_documents && IsScannedDocument(modality, sop_class)) {
      refusal = "scanned or encapsulated document; the policy does not allow it";
    }
    if (!refusal.empty()) {
      outcome.refused = true;
      outcome.refusal = refusal;
      return outcome;
    }
  }

  E_TransferSyntax write_xfer = original_xfer;
  if (cleaning != nullptr && dataset.tagExists(DCM_PixelData)) {
    if (DcmXfer(original_xfer).isEncapsulated()) {
      if (!JpegFragmentsScannable(dataset, original_xfer) ||
          dataset.chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad() ||
          !dataset.canWriteXfer(EXS_LittleEndianExplicit)) {
        outcome.refused = true;
        outcome.refusal = std::string("pixel regions must be blanked but ") +
                          DcmXfer(original_xfer).getXferName() + " cannot be decoded here";
        return outcome;
      }
      write_xfer = EXS_LittleEndianExplicit;
    }
    Status blanked = BlankRegions(dataset, cleaning->regions);
    if (!blanked.ok()) {
      outcome.refused = true;
      outcome.refusal = "pixel regions could not be blanked: " + blanked.message();
      return outcome;
    }
    dataset.putAndInsertString(DCM_BurnedInAnnotation, "NO");
    outcome.actions["pixel_regions_blanked"] += static_cast<int64_t>(cleaning->regions.size());
  }

  Walk walk(settings_, pseudonymiser_, CollectIdentifiers(dataset), outcome);
  walk.Item(dataset, Walk::Mode::kNormal);
  outcome.pseudonyms = walk.pairs();

  // What the standard asks a de-identified instance to say about itself.
  dataset.putAndInsertString(DCM_PatientIdentityRemoved, "YES");
  // LO holds 64 characters: a long policy name is shortened, never the version or the hash.
  const std::string prefix = std::string("Conduit ") + CONDUIT_VERSION + "; ";
  const std::string suffix =
      settings_.policy_hash.empty() ? "" : "; " + settings_.policy_hash.substr(0, 16);
  const size_t room = 64 - std::min<size_t>(64, prefix.size() + suffix.size());
  const std::string method = prefix + settings_.policy_name.substr(0, room) + suffix;
  dataset.putAndInsertString(DCM_DeidentificationMethod, method.c_str());
  delete dataset.remove(DCM_DeidentificationMethodCodeSequence);
  AddMethodCode(dataset, "113100", "Basic Application Confidentiality Profile");
  for (ProfileOption option : settings_.options.List())
    AddMethodCode(dataset, OptionCode(option), OptionCodeMeaning(option));
  if (cleaning != nullptr) AddMethodCode(dataset, "113101", "Clean Pixel Data Option");
  const char* temporal = settings_.options.Has(ProfileOption::kRetainLongitudinalFullDates)
                             ? "UNMODIFIED"
                         : walk.modified_dates() ? "MODIFIED"
                                                 : "REMOVED";
  dataset.putAndInsertString(DCM_LongitudinalTemporalInformationModified, temporal);

  outcome.study_uid = StringOf(dataset, DCM_StudyInstanceUID);
  outcome.series_uid = StringOf(dataset, DCM_SeriesInstanceUID);
  outcome.sop_instance_uid = StringOf(dataset, DCM_SOPInstanceUID);

  Result<deid_io::PixelDataWrite> saved = deid_io::SaveAtomicallyCopyingPixelData(
      *loaded, write_xfer, out, /*zero_preamble=*/true, copy_pixel_data_);
  if (!saved.ok() && saved.status().code() == StatusCode::kInvalidArgument)
    return InvalidArgument(in.string() + ": " + saved.status().message());
  RETURN_IF_ERROR(saved.status());
  outcome.pixel_data_copied = *saved == deid_io::PixelDataWrite::kCopiedFromInput;
  outcome.bytes_out = fs::file_size(out, ec);
  return outcome;
}

}  // namespace conduit
