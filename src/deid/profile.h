// The PS3.15 Annex E Basic Application Level Confidentiality Profile (Table E.1-1, edition
// 2024b) and its options, as generated tables (generated/*.inc, from
// ../shared/data/dicom-standard by tools/gen_deid_tables.py) plus the rules that turn a
// table row and the chosen options into one action for one attribute.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit {

// The options of Table E.1-1, in the table's column order.
enum class ProfileOption : uint8_t {
  kRetainSafePrivate,
  kRetainUids,
  kRetainDeviceIdentity,
  kRetainInstitutionIdentity,
  kRetainPatientCharacteristics,
  kRetainLongitudinalFullDates,
  kRetainLongitudinalModifiedDates,
  kCleanDescriptors,
  kCleanStructuredContent,
  kCleanGraphics,
};
inline constexpr int kProfileOptionCount = 10;

// A set of options (bit i = ProfileOption i).
class ProfileOptions {
 public:
  ProfileOptions() = default;
  ProfileOptions(std::initializer_list<ProfileOption> options);
  bool Has(ProfileOption option) const { return (bits_ >> static_cast<int>(option)) & 1u; }
  void Add(ProfileOption option) { bits_ |= 1u << static_cast<int>(option); }
  ProfileOptions Union(ProfileOptions other) const;
  std::vector<ProfileOption> List() const;
  bool operator==(const ProfileOptions&) const = default;

 private:
  uint32_t bits_ = 0;
};

// Policy-file names: retain_safe_private, retain_uids, retain_device_identity,
// retain_institution_identity, retain_patient_characteristics, retain_long_full_dates,
// retain_long_modified_dates, clean_descriptors, clean_structured_content, clean_graphics.
std::string_view OptionName(ProfileOption option);
std::optional<ProfileOption> ParseOptionName(std::string_view name);
// The option's code in CID 7050 (e.g. "113110" Retain UIDs) and its meaning.
std::string_view OptionCode(ProfileOption option);
std::string_view OptionCodeMeaning(ProfileOption option);

// A code as printed in the table.
enum class TableCode : uint8_t { kNone, kD, kZ, kX, kK, kC, kU, kZD, kXZ, kXD, kXZD, kXZU };
std::string_view TableCodeName(TableCode code);  // "D", "X/Z/U*", "" for kNone

// One row of Table E.1-1. `tag` with `mask`: a tag matches when (t & mask) == tag, so
// (60xx,3000) is tag 0x60003000 with mask 0xFF00FFFF. Private attributes are not a row.
struct ProfileEntry {
  uint32_t tag;
  uint32_t mask;
  const char* keyword;  // from the PS3.6 dictionary; "" when it has none
  const char* name;     // as in Table E.1-1
  TableCode basic;
  TableCode options[kProfileOptionCount];  // kNone where the option says nothing
};

// The 620 tag rows of the table (its 621 entries less "Private Attributes"), in tag order.
std::span<const ProfileEntry> ProfileTable();
// The row for a standard (even-group) tag, exact rows before masked ones; nullptr if none.
const ProfileEntry* FindProfileEntry(uint32_t tag);
// True if the tag is in the PS3.6 data dictionary of the same edition (repeating-group
// tags such as (60xx,0010) included; private tags and group lengths are not).
bool IsDictionaryTag(uint32_t tag);

// What the de-identifier does with one attribute.
enum class Action : uint8_t {
  kKeep,        // K, or a standard attribute outside the table
  kRemove,      // X
  kZero,        // Z: zero-length value
  kDummy,       // D: a dummy value of the VR (a UI gets a new UID, a sequence is cleaned)
  kClean,       // C: values of similar meaning without identifying information
  kReplaceUid,  // U: the keyed 2.25 UID; in a sequence (U*), every UID inside
};
std::string_view ActionName(Action action);  // "K", "X", "Z", "D", "C", "U"

// The action for a table row under `options`. An option that names the row overrides the
// basic profile; between several, K wins over C. Composite codes take the branch that keeps
// every IOD conformant without knowing the IOD: X/Z -> Z, X/D -> D, Z/D -> D, X/Z/D -> D, X/Z/U* ->
// U.
Action ResolveAction(const ProfileEntry& entry, ProfileOptions options);

}  // namespace conduit
