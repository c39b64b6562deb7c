#include "http/qido_query.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <utility>

#include "core/glob.h"
#include "http/dicom_keywords.h"

namespace conduit {
namespace {

constexpr uint32_t kSopInstanceUid = 0x00080018;
constexpr uint32_t kSeriesInstanceUid = 0x0020000E;

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerMinute = 60 * kMicrosPerSecond;
constexpr int64_t kMicrosPerHour = 60 * kMicrosPerMinute;
constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

// A date's (DA) and its time's (TM) tags, matched together as one date-time range.
struct DateTimePair {
  uint32_t date;
  uint32_t time;
};
constexpr std::array<DateTimePair, 6> kDateTimePairs = {{
    {0x00080020, 0x00080030},  // StudyDate, StudyTime
    {0x00080021, 0x00080031},  // SeriesDate, SeriesTime
    {0x00080022, 0x00080032},  // AcquisitionDate, AcquisitionTime
    {0x00080023, 0x00080033},  // ContentDate, ContentTime
    {0x00080012, 0x00080013},  // InstanceCreationDate, InstanceCreationTime
    {0x00400244, 0x00400245},  // PerformedProcedureStepStartDate, ...StartTime
}};

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) { return std::all_of(s.begin(), s.end(), IsDigit); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view Trim(std::string_view s) {
  auto pad = [](char c) { return c == ' ' || c == '\0'; };
  while (!s.empty() && pad(s.front())) s.remove_prefix(1);
  while (!s.empty() && pad(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

int Number(std::string_view digits) {
  int n = 0;
  for (char c : digits) n = n * 10 + (c - '0');
  return n;
}

// ---------------------------------------------------------------------------------------
// Dates and times as microsecond periods.

// Days from 0000-03-01-based civil calendar to 1970-01-01 (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// The moments a DA, TM or DT value names: [first, last] in microseconds (since 1970 for
// DA/DT, since midnight for TM), with the DT's UTC offset in minutes if it carries one.
struct Period {
  int64_t first = 0;
  int64_t last = 0;
  std::optional<int> offset_minutes;
};

// "YYYYMMDD".
std::optional<Period> ParseDate(std::string_view s) {
  if (s.size() != 8 || !AllDigits(s)) return std::nullopt;
  const int y = Number(s.substr(0, 4)), m = Number(s.substr(4, 2)), d = Number(s.substr(6, 2));
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return std::nullopt;
  const int64_t first = DaysFromCivil(y, m, d) * kMicrosPerDay;
  return Period{first, first + kMicrosPerDay - 1, std::nullopt};
}

// "HH[MM[SS[.F{1,6}]]]", as microseconds since midnight.
std::optional<Period> ParseTime(std::string_view s) {
  std::string_view fraction;
  if (const size_t dot = s.find('.'); dot != std::string_view::npos) {
    fraction = s.substr(dot + 1);
    s = s.substr(0, dot);
    if (s.size() != 6 || fraction.empty() || fraction.size() > 6 || !AllDigits(fraction)) {
      return std::nullopt;
    }
  }
  if ((s.size() != 2 && s.size() != 4 && s.size() != 6) || !AllDigits(s)) return std::nullopt;
  const int hh = Number(s.substr(0, 2));
  const int mm = s.size() >= 4 ? Number(s.substr(2, 2)) : 0;
  const int ss = s.size() >= 6 ? Number(s.substr(4, 2)) : 0;
  if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  int64_t first = hh * kMicrosPerHour + mm * kMicrosPerMinute + ss * kMicrosPerSecond;
  int64_t unit = s.size() == 2   ? kMicrosPerHour
                 : s.size() == 4 ? kMicrosPerMinute
                                 : kMicrosPerSecond;
  if (!fraction.empty()) {
    unit = 1;
    for (size_t i = fraction.size(); i < 6; ++i) unit *= 10;
    first += Number(fraction) * unit;
  }
  return Period{first, first + unit - 1, std::nullopt};
}

// "YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]".
std::optional<Period> ParseDateTime(std::string_view s) {
  std::optional<int> offset;
  if (s.size() > 5 && (s[s.size() - 5] == '+' || s[s.size() - 5] == '-')) {
    const std::string_view zone = s.substr(s.size() - 4);
    if (!AllDigits(zone)) return std::nullopt;
    const int hours = Number(zone.substr(0, 2)), minutes = Number(zone.substr(2, 2));
    if (minutes > 59) return std::nullopt;
    const int total = hours * 60 + minutes;
    offset = s[s.size() - 5] == '-' ? -total : total;
    if (*offset < -12 * 60 || *offset > 14 * 60) return std::nullopt;
    s.remove_suffix(5);
  }
  const size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  if (whole.size() < 4 || whole.size() % 2 != 0 || whole.size() > 14 || !AllDigits(whole)) {
    return std::nullopt;
  }
  if (dot != std::string_view::npos && whole.size() != 14) return std::nullopt;
  const int y = Number(whole.substr(0, 4));
  const int m = whole.size() >= 6 ? Number(whole.substr(4, 2)) : 1;
  const int d = whole.size() >= 8 ? Number(whole.substr(6, 2)) : 1;
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return std::nullopt;
  const int64_t day = DaysFromCivil(y, m, d) * kMicrosPerDay;
  Period p;
  if (whole.size() <= 8) {
    // Year, month or day: the whole period.
    int64_t end_day;
    if (whole.size() == 4) {
      end_day = DaysFromCivil(y + 1, 1, 1);
    } else if (whole.size() == 6) {
      end_day = m == 12 ? DaysFromCivil(y + 1, 1, 1) : DaysFromCivil(y, m + 1, 1);
    } else {
      end_day = DaysFromCivil(y, m, d) + 1;
    }
    p = Period{day, end_day * kMicrosPerDay - 1, std::nullopt};
  } else {
    const std::optional<Period> t = ParseTime(s.substr(8));
    if (!t) return std::nullopt;
    p = Period{day + t->first, day + t->last, std::nullopt};
  }
  p.offset_minutes = offset;
  return p;
}

std::optional<Period> ParseTemporal(std::string_view vr, std::string_view s) {
  if (vr == "DA") return ParseDate(s);
  if (vr == "TM") return ParseTime(s);
  return ParseDateTime(s);
}

bool IsTemporal(std::string_view vr) { return vr == "DA" || vr == "TM" || vr == "DT"; }

// `moment` (with its offset) compared with a bound (with its offset): both in UTC when both
// carry an offset, else as written. Returns moment - bound's chosen edge.
int64_t Shifted(int64_t micros, const std::optional<int>& offset, bool shift) {
  return shift && offset ? micros - int64_t{*offset} * kMicrosPerMinute : micros;
}

bool AtOrAfter(const Period& moment, const Period& lower) {
  const bool shift = moment.offset_minutes && lower.offset_minutes;
  return Shifted(moment.first, moment.offset_minutes, shift) >=
         Shifted(lower.first, lower.offset_minutes, shift);
}

bool AtOrBefore(const Period& moment, const Period& upper) {
  const bool shift = moment.offset_minutes && upper.offset_minutes;
  return Shifted(moment.first, moment.offset_minutes, shift) <=
         Shifted(upper.last, upper.offset_minutes, shift);
}

// ---------------------------------------------------------------------------------------
// Parsing.

Status Error(std::string_view parameter, std::string_view problem) {
  return InvalidArgument("QIDO query parameter '" + std::string(parameter) +
                         "': " + std::string(problem));
}

Status QueryError(std::string_view problem) {
  return InvalidArgument("QIDO query: " + std::string(problem));
}

Result<std::string> PercentDecode(std::string_view raw, std::string_view what, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(raw.size(), max_bytes));
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) {
        return QueryError(std::string(what) + " has a '%' without two hex digits");
      }
      const int hi = HexValue(raw[i + 1]), lo = HexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) {
        return QueryError(std::string(what) + " has a '%' without two hex digits");
      }
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (out.size() == max_bytes) {
      return QueryError(std::string(what) + " is longer than " + std::to_string(max_bytes) +
                        " bytes");
    }
    out.push_back(c);
  }
  return out;
}

std::optional<uint32_t> ParseUint32(std::string_view s) {
  if (s.empty() || s.size() > 10 || !AllDigits(s)) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) n = n * 10 + static_cast<uint64_t>(c - '0');
  if (n > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(n);
}

std::optional<bool> ParseBool(std::string_view s) {
  if (EqualsIgnoreCase(s, "true")) return true;
  if (EqualsIgnoreCase(s, "false")) return false;
  return std::nullopt;
}

struct Attribute {
  uint32_t tag;
  std::string vr;
  std::string keyword;  // "" for a tag not in the dictionary
};

// An attribute named by keyword or 8 hex digits: value, nullopt if `name` is neither
// (an unknown parameter), error if it is a sequence path or not a data element.
Result<std::optional<Attribute>> ResolveAttribute(std::string_view name) {
  if (name.find('.') != std::string_view::npos) {
    return Error(name, "sequence attribute paths are not supported");
  }
  if (name.size() == 8 &&
      std::all_of(name.begin(), name.end(), [](char c) { return HexValue(c) >= 0; })) {
    uint32_t tag = 0;
    for (char c : name) tag = tag << 4 | static_cast<uint32_t>(HexValue(c));
    if ((tag >> 16) == 0xFFFE || (tag & 0xFFFF) == 0) {
      return Error(name, "not a data element (item delimiter or group length)");
    }
    if (const auto info = FindAttributeByTag(tag)) {
      return std::optional<Attribute>(
          Attribute{tag, std::string(info->vr), std::string(info->keyword)});
    }
    return std::optional<Attribute>(Attribute{tag, "", ""});
  }
  if (const auto info = FindAttributeByKeyword(name)) {
    if ((info->tag >> 16) == 0xFFFE) return Error(name, "not a data element (item delimiter)");
    return std::optional<Attribute>(
        Attribute{info->tag, std::string(info->vr), std::string(info->keyword)});
  }
  return std::optional<Attribute>();
}

// The keyword of `tag`, or its 8 hex digits.
std::string AttributeName(uint32_t tag) {
  if (const auto info = FindAttributeByTag(tag)) return std::string(info->keyword);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string hex(8, '0');
  for (int i = 7; i >= 0; --i, tag >>= 4) hex[static_cast<size_t>(i)] = kHex[tag & 0xF];
  return hex;
}

bool WildcardVr(std::string_view vr) {
  static constexpr std::string_view kVrs[] = {"AE", "CS", "LO", "LT", "PN", "SH",
                                              "ST", "UC", "UR", "UT", ""};
  return std::find(std::begin(kVrs), std::end(kVrs), vr) != std::end(kVrs);
}

bool MatchableVr(std::string_view vr) {
  static constexpr std::string_view kBulk[] = {"SQ", "OB", "OD", "OF", "OL", "OV", "OW", "UN"};
  return std::find(std::begin(kBulk), std::end(kBulk), vr) == std::end(kBulk);
}

bool ValidUid(std::string_view uid) {
  return !uid.empty() && uid.size() <= 64 &&
         std::all_of(uid.begin(), uid.end(), [](char c) { return IsDigit(c) || c == '.'; });
}

std::string_view TemporalFormat(std::string_view vr) {
  if (vr == "DA") return "YYYYMMDD";
  if (vr == "TM") return "HH[MM[SS[.F{1-6}]]]";
  return "YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]][&ZZXX]";
}

// Splits a DA/TM/DT range at its '-'. A DT offset may itself contain '-', so every split
// is tried and exactly one must give valid (or empty) bounds.
Status ParseRange(std::string_view name, std::string_view vr, std::string_view value,
                  QidoCondition* c) {
  std::optional<std::pair<std::string_view, std::string_view>> found;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '-') continue;
    const std::string_view lo = Trim(value.substr(0, i)), hi = Trim(value.substr(i + 1));
    if (lo.empty() && hi.empty()) continue;
    if ((!lo.empty() && !ParseTemporal(vr, lo)) || (!hi.empty() && !ParseTemporal(vr, hi))) {
      continue;
    }
    if (found) return Error(name, "ambiguous range: more than one '-' could separate it");
    found.emplace(lo, hi);
  }
  if (!found) {
    return Error(name, "invalid range: bounds must be " + std::string(TemporalFormat(vr)) +
                           " around one '-', at least one of them given");
  }
  if (!found->first.empty()) c->lower = std::string(found->first);
  if (!found->second.empty()) c->upper = std::string(found->second);
  c->kind = QidoMatchKind::kRange;
  return Status::Ok();
}

Status ParseCondition(std::string_view name, const Attribute& a, std::string value,
                      QidoCondition* c) {
  c->tag = a.tag;
  c->vr = a.vr;
  c->value = std::move(value);
  const std::string_view v = Trim(c->value);
  if (v.empty()) {
    c->kind = QidoMatchKind::kUniversal;
    return Status::Ok();
  }
  if (a.vr == "UI") {
    const bool comma = v.find(',') != std::string_view::npos;
    const bool backslash = v.find('\\') != std::string_view::npos;
    if (comma && backslash) return Error(name, "UID list mixes ',' and '\\' separators");
    std::vector<std::string_view> uids = Split(v, comma ? ',' : '\\');
    for (std::string_view& uid : uids) {
      uid = Trim(uid);
      if (!ValidUid(uid)) {
        return Error(name, "invalid UID: expected digits and '.', 1 to 64 characters");
      }
    }
    if (uids.size() == 1) {
      c->kind = QidoMatchKind::kSingleValue;
    } else {
      c->kind = QidoMatchKind::kUidList;
      for (std::string_view uid : uids) c->uids.emplace_back(uid);
    }
    return Status::Ok();
  }
  if (v.find('\\') != std::string_view::npos) {
    return Error(name, "'\\' separates values; several values only for UID list matching");
  }
  if (IsTemporal(a.vr)) {
    if (v.find('-') != std::string_view::npos && !(a.vr == "DT" && ParseDateTime(v))) {
      return ParseRange(name, a.vr, v, c);
    }
    if (!ParseTemporal(a.vr, v)) {
      return Error(name,
                   "invalid value: expected " + std::string(TemporalFormat(a.vr)) + " or a range");
    }
    c->kind = QidoMatchKind::kSingleValue;
    return Status::Ok();
  }
  if (v.find_first_of("*?") != std::string_view::npos) {
    if (!WildcardVr(a.vr)) {
      return Error(name, "wild cards '*' and '?' are not allowed for VR " + a.vr);
    }
    c->kind = v.find_first_not_of('*') == std::string_view::npos ? QidoMatchKind::kUniversal
                                                                 : QidoMatchKind::kWildcard;
    return Status::Ok();
  }
  c->kind = QidoMatchKind::kSingleValue;
  return Status::Ok();
}

// The level whose unique key `tag` is, if below the study level.
std::optional<QidoLevel> KeyLevel(uint32_t tag) {
  if (tag == kSeriesInstanceUid) return QidoLevel::kSeries;
  if (tag == kSopInstanceUid) return QidoLevel::kInstance;
  return std::nullopt;
}

const QidoCondition* FindCondition(const std::vector<QidoCondition>& conditions, uint32_t tag) {
  for (const QidoCondition& c : conditions) {
    if (c.tag == tag) return &c;
  }
  return nullptr;
}

bool Temporal(const QidoCondition* c) {
  return c != nullptr &&
         (c->kind == QidoMatchKind::kSingleValue || c->kind == QidoMatchKind::kRange);
}

// The combined range of a date condition and its time partner: [first, last] microseconds
// since 1970, each end open when absent.
struct CombinedRange {
  std::optional<int64_t> first;
  std::optional<int64_t> last;
};

// Nullopt if a bound does not parse (a condition not made by ParseQidoQuery): no match.
std::optional<CombinedRange> Combine(const QidoCondition& date, const QidoCondition& time) {
  auto bounds = [](const QidoCondition& c) {
    if (c.kind == QidoMatchKind::kSingleValue) {
      const std::optional<std::string> v(std::string(Trim(c.value)));
      return std::make_pair(v, v);
    }
    return std::make_pair(c.lower, c.upper);
  };
  const auto [date_lo, date_hi] = bounds(date);
  const auto [time_lo, time_hi] = bounds(time);
  CombinedRange r;
  if (date_lo) {
    const std::optional<Period> d = ParseDate(*date_lo);
    const std::optional<Period> t = time_lo ? ParseTime(*time_lo) : Period{0, 0, std::nullopt};
    if (!d || !t) return std::nullopt;
    r.first = d->first + t->first;
  }
  if (date_hi) {
    const std::optional<Period> d = ParseDate(*date_hi);
    const std::optional<Period> t =
        time_hi ? ParseTime(*time_hi) : Period{0, kMicrosPerDay - 1, std::nullopt};
    if (!d || !t) return std::nullopt;
    r.last = d->first + t->last;
  }
  return r;
}

// Ranges whose lower bound is after the upper one; a TM range may cross midnight only as
// part of a combined date-time range, which then must not be reversed.
Status CheckRangeOrder(const QidoQuery& q) {
  for (const QidoCondition& c : q.conditions) {
    if (c.kind != QidoMatchKind::kRange || !c.lower || !c.upper) continue;
    const Period lo = *ParseTemporal(c.vr, *c.lower), hi = *ParseTemporal(c.vr, *c.upper);
    if (AtOrBefore(lo, hi)) continue;
    bool combined = false;
    if (c.vr == "TM") {
      for (const DateTimePair& pair : kDateTimePairs) {
        if (pair.time == c.tag && Temporal(FindCondition(q.conditions, pair.date)) &&
            FindCondition(q.conditions, pair.date)->vr == "DA") {
          combined = true;
        }
      }
    }
    if (!combined) {
      return Error(AttributeName(c.tag), "range lower bound is after its upper bound");
    }
  }
  for (const DateTimePair& pair : kDateTimePairs) {
    const QidoCondition* date = FindCondition(q.conditions, pair.date);
    const QidoCondition* time = FindCondition(q.conditions, pair.time);
    if (!Temporal(date) || !Temporal(time) || date->vr != "DA" || time->vr != "TM") continue;
    const std::optional<CombinedRange> r = Combine(*date, *time);
    if (r && r->first && r->last && *r->first > *r->last) {
      return QueryError("combined date-time range of '" + AttributeName(pair.date) + "' and '" +
                        AttributeName(pair.time) + "' ends before it starts");
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Matching.

bool FuzzyPersonName(std::string_view pattern, std::string_view stored) {
  const std::string_view query_group = pattern.substr(0, pattern.find('='));
  const std::string_view stored_group = stored.substr(0, stored.find('='));
  const std::vector<std::string_view> query = Split(query_group, '^');
  const std::vector<std::string_view> names = Split(stored_group, '^');
  auto prefix = [](std::string_view component, std::string_view name) {
    std::string p(Trim(component));
    p.push_back('*');
    return QidoWildcardMatch(p, Trim(name), /*ignore_case=*/true);
  };
  if (query.size() == 1) {
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view name) { return prefix(query[0], name); });
  }
  for (size_t i = 0; i < query.size(); ++i) {
    if (Trim(query[i]).empty()) continue;
    if (i >= names.size() || !prefix(query[i], names[i])) return false;
  }
  return true;
}

bool MatchOneValue(const QidoCondition& c, std::string_view stored, bool fuzzy) {
  stored = Trim(stored);
  const std::string_view v = Trim(c.value);
  switch (c.kind) {
    case QidoMatchKind::kUniversal:
      return true;
    case QidoMatchKind::kUidList:
      return std::find(c.uids.begin(), c.uids.end(), stored) != c.uids.end();
    case QidoMatchKind::kWildcard:
      if (fuzzy && c.vr == "PN") return FuzzyPersonName(v, stored);
      return QidoWildcardMatch(v, stored, /*ignore_case=*/false);
    case QidoMatchKind::kSingleValue:
      if (IsTemporal(c.vr)) {
        const std::optional<Period> moment = ParseTemporal(c.vr, stored);
        const std::optional<Period> want = ParseTemporal(c.vr, v);
        return moment && want && AtOrAfter(*moment, *want) && AtOrBefore(*moment, *want);
      }
      if (fuzzy && c.vr == "PN") return FuzzyPersonName(v, stored);
      return stored == v;
    case QidoMatchKind::kRange: {
      const std::optional<Period> moment = ParseTemporal(c.vr, stored);
      if (!moment || !IsTemporal(c.vr)) return false;
      if (c.lower) {
        const std::optional<Period> lower = ParseTemporal(c.vr, *c.lower);
        if (!lower || !AtOrAfter(*moment, *lower)) return false;
      }
      if (c.upper) {
        const std::optional<Period> upper = ParseTemporal(c.vr, *c.upper);
        if (!upper || !AtOrBefore(*moment, *upper)) return false;
      }
      return true;
    }
  }
  return false;
}

bool MatchCondition(const QidoCondition& c, const std::optional<std::string>& stored, bool fuzzy) {
  if (c.kind == QidoMatchKind::kUniversal) return true;
  if (!stored) return c.kind == QidoMatchKind::kWildcard && MatchOneValue(c, "", fuzzy);
  for (std::string_view value : Split(*stored, '\\')) {
    if (MatchOneValue(c, value, fuzzy)) return true;
  }
  return false;
}

bool MatchCombined(const QidoCondition& date, const QidoCondition& time,
                   const std::optional<std::string>& dates,
                   const std::optional<std::string>& times) {
  const std::optional<CombinedRange> r = Combine(date, time);
  if (!dates || !r) return false;
  auto within = [&](int64_t first, int64_t last) {
    return (!r->first || last >= *r->first) && (!r->last || first <= *r->last);
  };
  for (std::string_view d : Split(*dates, '\\')) {
    const std::optional<Period> day = ParseDate(Trim(d));
    if (!day) continue;
    bool any_time = false;
    if (times) {
      for (std::string_view t : Split(*times, '\\')) {
        const std::optional<Period> tod = ParseTime(Trim(t));
        if (!tod) continue;
        any_time = true;
        const int64_t moment = day->first + tod->first;
        if (within(moment, moment)) return true;
      }
    }
    if (!any_time && within(day->first, day->last)) return true;
  }
  return false;
}

}  // namespace

std::string_view QidoLevelName(QidoLevel level) {
  switch (level) {
    case QidoLevel::kStudy:
      return "study";
    case QidoLevel::kSeries:
      return "series";
    case QidoLevel::kInstance:
      return "instance";
  }
  return "?";
}

std::string_view QidoMatchKindName(QidoMatchKind kind) {
  switch (kind) {
    case QidoMatchKind::kUniversal:
      return "universal";
    case QidoMatchKind::kSingleValue:
      return "single value";
    case QidoMatchKind::kWildcard:
      return "wild card";
    case QidoMatchKind::kUidList:
      return "UID list";
    case QidoMatchKind::kRange:
      return "range";
  }
  return "?";
}

bool QidoWildcardMatch(std::string_view pattern, std::string_view text, bool ignore_case) {
  return GlobMatch(pattern, text, ignore_case ? GlobCase::kIgnore : GlobCase::kExact);
}

Result<QidoQuery> ParseQidoQuery(QidoLevel level, std::string_view query_string,
                                 const QidoLimits& limits) {
  if (query_string.size() > limits.max_query_bytes) {
    return QueryError("longer than " + std::to_string(limits.max_query_bytes) + " bytes");
  }
  QidoQuery q;
  q.level = level;
  bool seen_fuzzy = false, seen_limit = false, seen_offset = false, seen_empty = false,
       seen_multiple = false;
  size_t parameters = 0;
  for (std::string_view segment : Split(query_string, '&')) {
    if (segment.empty()) continue;
    if (++parameters > limits.max_parameters) {
      return QueryError("more than " + std::to_string(limits.max_parameters) + " parameters");
    }
    const size_t eq = segment.find('=');
    if (eq == std::string_view::npos) {
      return QueryError("parameter " + std::to_string(parameters) + " has no '='");
    }
    ASSIGN_OR_RETURN(
        const std::string name,
        PercentDecode(segment.substr(0, eq), "the name of parameter " + std::to_string(parameters),
                      limits.max_value_bytes));
    if (name.empty()) {
      return QueryError("parameter " + std::to_string(parameters) + " has an empty name");
    }
    // The name is echoed in messages from here on: keep it printable.
    const bool printable = std::all_of(name.begin(), name.end(), [](char c) {
      return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F;
    });
    const std::string shown = printable && name.size() <= 64
                                  ? name
                                  : "#" + std::to_string(parameters) + " (unprintable name)";
    ASSIGN_OR_RETURN(std::string value,
                     PercentDecode(segment.substr(eq + 1), "the value of '" + shown + "'",
                                   limits.max_value_bytes));

    auto boolean = [&](bool* seen, bool* out) -> Status {
      if (*seen) return Error(shown, "given more than once");
      *seen = true;
      const std::optional<bool> b = ParseBool(value);
      if (!b) return Error(shown, "expected true or false");
      *out = *b;
      return Status::Ok();
    };
    if (EqualsIgnoreCase(name, "fuzzymatching")) {
      RETURN_IF_ERROR(boolean(&seen_fuzzy, &q.fuzzy_matching));
      continue;
    }
    if (EqualsIgnoreCase(name, "emptyvaluematching")) {
      RETURN_IF_ERROR(boolean(&seen_empty, &q.empty_value_matching_requested));
      continue;
    }
    if (EqualsIgnoreCase(name, "multiplevaluematching")) {
      RETURN_IF_ERROR(boolean(&seen_multiple, &q.multiple_value_matching_requested));
      continue;
    }
    if (EqualsIgnoreCase(name, "limit") || EqualsIgnoreCase(name, "offset")) {
      const bool is_limit = EqualsIgnoreCase(name, "limit");
      bool& seen = is_limit ? seen_limit : seen_offset;
      if (seen) return Error(shown, "given more than once");
      seen = true;
      const std::optional<uint32_t> n = ParseUint32(value);
      if (!n) return Error(shown, "expected an unsigned decimal integer below 2^32");
      if (is_limit) {
        q.limit_capped = *n > limits.max_results;
        q.limit = std::min(*n, limits.max_results);
      } else {
        q.offset = *n;
      }
      continue;
    }
    if (EqualsIgnoreCase(name, "includefield")) {
      for (std::string_view item : Split(value, ',')) {
        item = Trim(item);
        if (item.empty()) return Error(shown, "empty attribute in the list");
        if (EqualsIgnoreCase(item, "all")) {
          q.include_all = true;
          continue;
        }
        ASSIGN_OR_RETURN(const std::optional<Attribute> a, ResolveAttribute(item));
        if (!a)
          return Error(shown, "names no attribute: expected a PS3.6 keyword, 8 hex digits or all");
        if (std::find(q.include_fields.begin(), q.include_fields.end(), a->tag) !=
            q.include_fields.end()) {
          continue;
        }
        if (q.include_fields.size() == limits.max_include_fields) {
          return Error(shown,
                       "more than " + std::to_string(limits.max_include_fields) + " attributes");
        }
        q.include_fields.push_back(a->tag);
      }
      continue;
    }

    ASSIGN_OR_RETURN(const std::optional<Attribute> a, ResolveAttribute(name));
    if (!a) {
      q.ignored_parameters.push_back(name);
      continue;
    }
    if (FindCondition(q.conditions, a->tag) != nullptr) {
      return Error(shown, "attribute given more than once (a UID list is comma-separated)");
    }
    if (!MatchableVr(a->vr)) {
      return Error(shown, "attributes of VR " + a->vr + " cannot be matched");
    }
    if (const std::optional<QidoLevel> key = KeyLevel(a->tag);
        key && static_cast<int>(*key) > static_cast<int>(level)) {
      return Error(shown, "is a key of the " + std::string(QidoLevelName(*key)) +
                              " level, below this " + std::string(QidoLevelName(level)) +
                              " level search");
    }
    QidoCondition c;
    RETURN_IF_ERROR(ParseCondition(shown, *a, std::move(value), &c));
    q.conditions.push_back(std::move(c));
  }
  RETURN_IF_ERROR(CheckRangeOrder(q));
  return q;
}

bool Matches(const QidoQuery& q, const QidoValueLookup& value_of) {
  std::vector<uint32_t> done;  // time tags matched together with their date
  for (const DateTimePair& pair : kDateTimePairs) {
    const QidoCondition* date = FindCondition(q.conditions, pair.date);
    const QidoCondition* time = FindCondition(q.conditions, pair.time);
    if (!Temporal(date) || !Temporal(time) || date->vr != "DA" || time->vr != "TM") continue;
    if (!MatchCombined(*date, *time, value_of(pair.date), value_of(pair.time))) return false;
    done.push_back(pair.date);
    done.push_back(pair.time);
  }
  for (const QidoCondition& c : q.conditions) {
    if (std::find(done.begin(), done.end(), c.tag) != done.end()) continue;
    if (c.kind == QidoMatchKind::kUniversal) continue;
    if (!MatchCondition(c, value_of(c.tag), q.fuzzy_matching)) return false;
  }
  return true;
}

}  // namespace conduit
