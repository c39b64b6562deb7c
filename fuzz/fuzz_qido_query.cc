// Fuzz target: QIDO-RS query strings. Byte 0 picks the search level (study, series,
// instance); the rest is the query string after '?'. Checks that ParseQidoQuery fails only
// with kInvalidArgument, that a parsed query keeps its promises (limit within the cap,
// bounded lists, kinds consistent with their fields), that parsing is deterministic, and
// that Matches() runs on a fixed set of entities (and on each single condition) without
// crashing and gives the same answer twice.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/qido_query.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_qido_query: property violated: %s\n", what);
  std::abort();
}

using Entity = std::map<uint32_t, std::string>;

// Stored values as an index would hold them: padded, multi-valued, partial, odd, empty.
std::vector<Entity> Entities() {
  return {
      {},
      {{0x0020000D, "1.2.840.113619.2.1"},
       {0x0020000E, "1.2.840.113619.2.1.1"},
       {0x00080018, std::string("1.2.840.113619.2.1.1.1\0", 23)},
       {0x00100010, "Doe^John^^Dr=DOE^JOHN"},
       {0x00100020, "PID 7 "},
       {0x00080061, "CT\\MR\\SR"},
       {0x00080060, "CT"},
       {0x00080050, "ACC*123?"},
       {0x00080020, "20240115"},
       {0x00080030, "103045.123456"},
       {0x00080021, "20240115\\20240116"},
       {0x00080031, "23"},
       {0x0008002A, "20240115103045.5+0100"},
       {0x00100030, "19700101"},
       {0x00201208, "12"}},
      {{0x00100010, ""},
       {0x00080020, "2024-01-15"},
       {0x00080030, "10:30"},
       {0x0008002A, "2024"},
       {0x00080061, "\\\\"},
       {0x0020000D, "\\"}},
      {{0x00080020, "00010101"},
       {0x00080030, "000000"},
       {0x0008002A, "99991231235959.999999-1200"}},
  };
}

bool MatchEntity(const conduit::QidoQuery& q, const Entity& entity) {
  return conduit::Matches(q, [&](uint32_t tag) -> std::optional<std::string> {
    const auto it = entity.find(tag);
    if (it == entity.end()) return std::nullopt;
    return it->second;
  });
}

void CheckQuery(const conduit::QidoQuery& q, const conduit::QidoLimits& limits) {
  using conduit::QidoMatchKind;
  if (q.limit && *q.limit > limits.max_results) Fail("limit above the cap");
  if (q.limit_capped && (!q.limit || *q.limit != limits.max_results)) Fail("capped limit");
  if (q.include_fields.size() > limits.max_include_fields) Fail("too many include fields");
  if (q.conditions.size() + q.ignored_parameters.size() > limits.max_parameters) {
    Fail("more conditions than parameters");
  }
  for (size_t i = 0; i < q.conditions.size(); ++i) {
    const conduit::QidoCondition& c = q.conditions[i];
    for (size_t j = 0; j < i; ++j) {
      if (q.conditions[j].tag == c.tag) Fail("an attribute matched twice");
    }
    if (c.value.size() > limits.max_value_bytes) Fail("value above max_value_bytes");
    if (c.kind == QidoMatchKind::kUidList && (c.uids.size() < 2 || c.vr != "UI")) {
      Fail("UID list without several UIDs or on a non-UI attribute");
    }
    if (c.kind == QidoMatchKind::kRange) {
      if (!c.lower && !c.upper) Fail("range without bounds");
      if (c.vr != "DA" && c.vr != "TM" && c.vr != "DT") Fail("range on a non-temporal VR");
    }
    if (c.kind == QidoMatchKind::kWildcard && c.value.find_first_of("*?") == std::string::npos) {
      Fail("wild card without '*' or '?'");
    }
    if (c.vr == "SQ") Fail("sequence attribute accepted");
  }
}

bool CombinesDateAndTime(const conduit::QidoQuery& q) {
  static constexpr uint32_t kPairs[][2] = {{0x00080020, 0x00080030}, {0x00080021, 0x00080031},
                                           {0x00080022, 0x00080032}, {0x00080023, 0x00080033},
                                           {0x00080012, 0x00080013}, {0x00400244, 0x00400245}};
  for (const auto& pair : kPairs) {
    bool date = false, time = false;
    for (const conduit::QidoCondition& c : q.conditions) {
      date = date || c.tag == pair[0];
      time = time || c.tag == pair[1];
    }
    if (date && time) return true;
  }
  return false;
}

bool SameQuery(const conduit::QidoQuery& a, const conduit::QidoQuery& b) {
  if (a.conditions.size() != b.conditions.size()) return false;
  for (size_t i = 0; i < a.conditions.size(); ++i) {
    const auto &x = a.conditions[i], &y = b.conditions[i];
    if (x.tag != y.tag || x.vr != y.vr || x.value != y.value || x.kind != y.kind ||
        x.uids != y.uids || x.lower != y.lower || x.upper != y.upper) {
      return false;
    }
  }
  return a.level == b.level && a.include_all == b.include_all &&
         a.include_fields == b.include_fields && a.fuzzy_matching == b.fuzzy_matching &&
         a.limit == b.limit && a.limit_capped == b.limit_capped && a.offset == b.offset &&
         a.empty_value_matching_requested == b.empty_value_matching_requested &&
         a.multiple_value_matching_requested == b.multiple_value_matching_requested &&
         a.ignored_parameters == b.ignored_parameters;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto level = static_cast<conduit::QidoLevel>(data[0] % 3);
  const std::string_view query(reinterpret_cast<const char*>(data) + 1, size - 1);
  conduit::QidoLimits limits;
  limits.max_results = 500;

  const conduit::Result<conduit::QidoQuery> first = conduit::ParseQidoQuery(level, query, limits);
  const conduit::Result<conduit::QidoQuery> second = conduit::ParseQidoQuery(level, query, limits);
  if (first.ok() != second.ok()) Fail("parsing is not deterministic");
  if (!first.ok()) {
    if (first.status().code() != conduit::StatusCode::kInvalidArgument) {
      Fail("error other than kInvalidArgument");
    }
    if (first.status().message() != second.status().message()) Fail("error not deterministic");
    if (first.status().message().empty()) Fail("error without a message");
    return 0;
  }
  const conduit::QidoQuery& q = *first;
  if (!SameQuery(q, *second)) Fail("parsing is not deterministic");
  if (q.level != level) Fail("level not kept");
  CheckQuery(q, limits);

  static const std::vector<Entity> entities = Entities();
  for (const Entity& entity : entities) {
    const bool all = MatchEntity(q, entity);
    if (all != MatchEntity(q, entity)) Fail("matching is not deterministic");
    // The query is the conjunction of its conditions, except where a date and its time
    // combine into one range.
    bool each = true;
    for (const conduit::QidoCondition& c : q.conditions) {
      conduit::QidoQuery single = q;
      single.conditions = {c};
      each = MatchEntity(single, entity) && each;
    }
    if (!CombinesDateAndTime(q) && all != each)
      Fail("query differs from the conjunction of its conditions");
  }
  return 0;
}
