#include "deid/profile.h"

#include <algorithm>
#include <array>
#include <cstddef>

namespace conduit {
namespace {

struct OptionInfo {
  std::string_view name;
  std::string_view code;
  std::string_view meaning;
};

// In enum order. Codes and meanings: PS3.16 CID 7050 (DCM scheme).
constexpr std::array<OptionInfo, kProfileOptionCount> kOptionInfo = {{
    {"retain_safe_private", "113111", "Retain Safe Private Option"},
    {"retain_uids", "113110", "Retain UIDs Option"},
    {"retain_device_identity", "113109", "Retain Device Identity Option"},
    {"retain_institution_identity", "113112", "Retain Institution Identity Option"},
    {"retain_patient_characteristics", "113108", "Retain Patient Characteristics Option"},
    {"retain_long_full_dates", "113106",
     "Retain Longitudinal Temporal Information Full Dates Option"},
    {"retain_long_modified_dates", "113107",
     "Retain Longitudinal Temporal Information Modified Dates Option"},
    {"clean_descriptors", "113105", "Clean Descriptors Option"},
    {"clean_structured_content", "113104", "Clean Structured Content Option"},
    {"clean_graphics", "113103", "Clean Graphics Option"},
}};

constexpr uint32_t kExactMask = 0xFFFFFFFFu;

constexpr ProfileEntry kProfileTable[] = {
#include "deid/generated/profile_table.inc"
};

struct DictionaryTag {
  uint32_t tag;
  uint32_t mask;
};

constexpr DictionaryTag kDictionary[] = {
#include "deid/generated/dictionary.inc"
};

// Both tables are in tag order (the generator's promise, checked here at compile time), so an
// exact tag is found by binary search; the few entries with a mask are listed separately.
// The dictionary holds equal tag values for an exact tag and a retired repeating-group one
// ((0028,0400) and (0028,04x0)); profile rows are unique.
template <typename T, std::size_t N>
constexpr bool InTagOrder(const T (&table)[N], bool unique) {
  for (std::size_t i = 1; i < N; ++i) {
    if (table[i - 1].tag > table[i].tag) return false;
    if (table[i - 1].tag == table[i].tag && (unique || table[i - 1].mask == table[i].mask)) {
      return false;
    }
  }
  return true;
}
static_assert(InTagOrder(kProfileTable, /*unique=*/true), "profile_table.inc out of tag order");
static_assert(InTagOrder(kDictionary, /*unique=*/false), "dictionary.inc out of tag order");

template <typename T, std::size_t N>
constexpr std::size_t CountMasked(const T (&table)[N]) {
  std::size_t count = 0;
  for (const T& row : table) count += row.mask != kExactMask;
  return count;
}

template <std::size_t M, typename T, std::size_t N>
constexpr std::array<uint16_t, M> MaskedIndexes(const T (&table)[N]) {
  static_assert(N <= 0xFFFF);
  std::array<uint16_t, M> indexes{};
  std::size_t next = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (table[i].mask != kExactMask) indexes[next++] = static_cast<uint16_t>(i);
  }
  return indexes;
}

constexpr auto kMaskedProfileRows = MaskedIndexes<CountMasked(kProfileTable)>(kProfileTable);
constexpr auto kMaskedDictionaryTags = MaskedIndexes<CountMasked(kDictionary)>(kDictionary);

// The entry whose `tag` equals `tag` exactly, or nullptr.
template <typename T, std::size_t N>
const T* FindExact(const T (&table)[N], uint32_t tag) {
  const T* it = std::lower_bound(std::begin(table), std::end(table), tag,
                                 [](const T& row, uint32_t t) { return row.tag < t; });
  return it != std::end(table) && it->tag == tag ? it : nullptr;
}

bool IsPrivateGroup(uint32_t tag) { return (tag >> 16) & 1u; }

// X/Z -> Z, X/D -> D, Z/D -> D, X/Z/D -> D, X/Z/U* -> U: the branch that keeps every IOD
// conformant without knowing the IOD (a Type 1 attribute needs a value, a Type 2 one an
// element, a Type 3 one may go).
Action ActionOf(TableCode code) {
  switch (code) {
    case TableCode::kK:
      return Action::kKeep;
    case TableCode::kX:
      return Action::kRemove;
    case TableCode::kZ:
    case TableCode::kXZ:
      return Action::kZero;
    case TableCode::kD:
    case TableCode::kZD:
    case TableCode::kXD:
    case TableCode::kXZD:
      return Action::kDummy;
    case TableCode::kC:
      return Action::kClean;
    case TableCode::kU:
    case TableCode::kXZU:
      return Action::kReplaceUid;
    case TableCode::kNone:
      break;
  }
  // A row always has a basic code; kNone cannot come from the generated table.
  return Action::kRemove;
}

}  // namespace

ProfileOptions::ProfileOptions(std::initializer_list<ProfileOption> options) {
  for (ProfileOption option : options) Add(option);
}

ProfileOptions ProfileOptions::Union(ProfileOptions other) const {
  ProfileOptions result;
  result.bits_ = bits_ | other.bits_;
  return result;
}

std::vector<ProfileOption> ProfileOptions::List() const {
  std::vector<ProfileOption> options;
  for (int i = 0; i < kProfileOptionCount; ++i) {
    auto option = static_cast<ProfileOption>(i);
    if (Has(option)) options.push_back(option);
  }
  return options;
}

std::string_view OptionName(ProfileOption option) {
  return kOptionInfo[static_cast<std::size_t>(option)].name;
}

std::optional<ProfileOption> ParseOptionName(std::string_view name) {
  for (int i = 0; i < kProfileOptionCount; ++i) {
    if (kOptionInfo[i].name == name) return static_cast<ProfileOption>(i);
  }
  return std::nullopt;
}

std::string_view OptionCode(ProfileOption option) {
  return kOptionInfo[static_cast<std::size_t>(option)].code;
}

std::string_view OptionCodeMeaning(ProfileOption option) {
  return kOptionInfo[static_cast<std::size_t>(option)].meaning;
}

std::string_view TableCodeName(TableCode code) {
  switch (code) {
    case TableCode::kNone:
      return "";
    case TableCode::kD:
      return "D";
    case TableCode::kZ:
      return "Z";
    case TableCode::kX:
      return "X";
    case TableCode::kK:
      return "K";
    case TableCode::kC:
      return "C";
    case TableCode::kU:
      return "U";
    case TableCode::kZD:
      return "Z/D";
    case TableCode::kXZ:
      return "X/Z";
    case TableCode::kXD:
      return "X/D";
    case TableCode::kXZD:
      return "X/Z/D";
    case TableCode::kXZU:
      return "X/Z/U*";
  }
  return "";
}

std::span<const ProfileEntry> ProfileTable() { return kProfileTable; }

const ProfileEntry* FindProfileEntry(uint32_t tag) {
  if (IsPrivateGroup(tag)) return nullptr;
  if (const ProfileEntry* exact = FindExact(kProfileTable, tag)) return exact;
  for (uint16_t index : kMaskedProfileRows) {
    const ProfileEntry& row = kProfileTable[index];
    if ((tag & row.mask) == row.tag) return &row;
  }
  return nullptr;
}

bool IsDictionaryTag(uint32_t tag) {
  if (IsPrivateGroup(tag) || (tag & 0xFFFFu) == 0) return false;  // private, group length
  if (FindExact(kDictionary, tag) != nullptr) return true;
  for (uint16_t index : kMaskedDictionaryTags) {
    const DictionaryTag& entry = kDictionary[index];
    if ((tag & entry.mask) == entry.tag) return true;
  }
  return false;
}

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kKeep:
      return "K";
    case Action::kRemove:
      return "X";
    case Action::kZero:
      return "Z";
    case Action::kDummy:
      return "D";
    case Action::kClean:
      return "C";
    case Action::kReplaceUid:
      return "U";
  }
  return "";
}

Action ResolveAction(const ProfileEntry& entry, ProfileOptions options) {
  // Every enabled option that names the row competes; K wins over C, C over any other code
  // (the table's option columns hold only K and C).
  TableCode chosen = TableCode::kNone;
  for (int i = 0; i < kProfileOptionCount; ++i) {
    TableCode code = entry.options[i];
    if (code == TableCode::kNone || !options.Has(static_cast<ProfileOption>(i))) continue;
    if (chosen == TableCode::kNone || code == TableCode::kK ||
        (code == TableCode::kC && chosen != TableCode::kK)) {
      chosen = code;
    }
  }
  return ActionOf(chosen != TableCode::kNone ? chosen : entry.basic);
}

}  // namespace conduit
