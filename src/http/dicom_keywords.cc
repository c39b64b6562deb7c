#include "http/dicom_keywords.h"

#include <algorithm>
#include <iterator>

namespace conduit {
namespace {

struct KeywordEntry {
  uint32_t tag;
  uint32_t mask;  // a tag t is this entry when (t & mask) == tag
  const char* keyword;
  const char* vr;
};

#include "http/dicom_keywords.inc"

static_assert(std::size(kEntries) == std::size(kKeywordOrder));

DicomAttributeInfo Info(const KeywordEntry& e, uint32_t tag) { return {tag, e.keyword, e.vr}; }

}  // namespace

std::optional<DicomAttributeInfo> FindAttributeByKeyword(std::string_view keyword) {
  const auto* it = std::lower_bound(
      std::begin(kKeywordOrder), std::end(kKeywordOrder), keyword,
      [](uint16_t i, std::string_view k) { return std::string_view(kEntries[i].keyword) < k; });
  if (it == std::end(kKeywordOrder) || kEntries[*it].keyword != keyword) return std::nullopt;
  return Info(kEntries[*it], kEntries[*it].tag);
}

std::optional<DicomAttributeInfo> FindAttributeByTag(uint32_t tag) {
  const auto* it = std::lower_bound(std::begin(kEntries), std::end(kEntries), tag,
                                    [](const KeywordEntry& e, uint32_t t) { return e.tag < t; });
  if (it != std::end(kEntries) && it->tag == tag && it->mask == 0xFFFFFFFFu) return Info(*it, tag);
  for (const KeywordEntry& e : kEntries) {
    if (e.mask != 0xFFFFFFFFu && (tag & e.mask) == e.tag) return Info(e, tag);
  }
  return std::nullopt;
}

}  // namespace conduit
