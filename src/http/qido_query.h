// QIDO-RS search queries (PS3.18 §8.3.4, §10.6): the parsed form of a search's query string
// and the attribute matching of PS3.4 C.2.2.2 applied to one entity's stored values.
// Pure functions over values; no storage, no HTTP. Thread safety: all functions are reentrant.
//
// Choices where the standard leaves room (state them in the conformance statement):
// - Query string: split on '&', then name and value on the first '='; each percent-decoded
//   (%XX, RFC 3986). '+' is a literal plus, not a space (PS3.18 §8.3 uses RFC 3986 query
//   syntax, not HTML forms). Empty segments ("a=1&&b=2") are skipped.
// - Parameter names fuzzymatching, includefield, limit, offset, emptyvaluematching and
//   multiplevaluematching, and the values true/false/all, are case-insensitive (ABNF quoted
//   strings). Attributes are named by exact PS3.6 keyword or by 8 hex digits.
// - A name that is neither a parameter nor a PS3.6 keyword is ignored and listed in
//   `ignored_parameters` (PS3.18 §8.3: unsupported parameters are ignored; the front end may
//   warn). A sequence path ("00081032.00080100") is an error: sequence matching unsupported.
// - An attribute given twice is an error (use a comma-separated list for UID list matching).
// - includefield may repeat and takes comma-separated lists; "all" anywhere means all.
// - limit above the server maximum is capped and `limit_capped` set (front end: Warning 299).
// - emptyvaluematching / multiplevaluematching are accepted and recorded, not performed:
//   the front end answers "true" with the Warning 299 of PS3.18 §8.3.4.5/§8.3.4.6.
// - Error messages name the parameter and the problem, never echo the value (it may be a
//   patient's name or birth date).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit {

enum class QidoLevel { kStudy, kSeries, kInstance };
std::string_view QidoLevelName(QidoLevel level);  // "study", "series", "instance"

// PS3.4 C.2.2.2 matching types (sequence matching is not supported).
enum class QidoMatchKind {
  kUniversal,    // empty value (or "*" on a wild-card VR): every entity matches
  kSingleValue,  // exact value; on DA/TM/DT the whole period it names (see Matches)
  kWildcard,     // '*' any run, '?' any one character; only AE CS LO LT PN SH ST UC UR UT
                 // and private/unknown tags
  kUidList,      // UI attribute with several UIDs, comma- (QIDO) or backslash- (DIMSE) separated
  kRange,        // DA, TM or DT "lower-upper", "lower-" or "-upper"; a DT value that parses
                 // whole ("20240101-0500": offset -05:00) is a single value, and a DT range
                 // must split at exactly one '-' into valid bounds
};
std::string_view QidoMatchKindName(QidoMatchKind kind);

struct QidoCondition {
  uint32_t tag = 0;
  std::string vr;     // from PS3.6; "" for private tags and tags not in the dictionary
  std::string value;  // percent-decoded, as given
  QidoMatchKind kind = QidoMatchKind::kUniversal;
  std::vector<std::string> uids;     // kUidList: the UIDs in the order given
  std::optional<std::string> lower;  // kRange: the bounds as given, absent when open
  std::optional<std::string> upper;
};

struct QidoLimits {
  size_t max_query_bytes = 8192;    // the raw query string
  size_t max_parameters = 64;       // non-empty '&'-separated segments
  size_t max_value_bytes = 4096;    // one decoded name or value (a UID list of ~60 UIDs)
  size_t max_include_fields = 256;  // includefield attributes over all its parameters
  uint32_t max_results = 1000;      // the server maximum that caps `limit`
};

struct QidoQuery {
  QidoLevel level = QidoLevel::kStudy;
  std::vector<QidoCondition> conditions;  // in the order given, one per attribute
  bool include_all = false;               // includefield=all
  std::vector<uint32_t> include_fields;   // in order of first mention, no duplicates
  bool fuzzy_matching = false;
  std::optional<uint32_t> limit;  // never above QidoLimits::max_results
  bool limit_capped = false;      // the limit asked for was above max_results
  uint32_t offset = 0;
  bool empty_value_matching_requested = false;     // not performed: see the header comment
  bool multiple_value_matching_requested = false;  // not performed: see the header comment
  std::vector<std::string> ignored_parameters;     // decoded names, at most max_parameters
};

// Parses the query string after '?' of a search at `level`.
// Errors (all kInvalidArgument, message naming the parameter and the problem): query,
// parameter count or value over `limits`; bad percent-encoding; a segment without '=';
// a sequence path; an attribute given twice or without a matchable VR (SQ, OB, OW, ...);
// an instance or series key below `level` (SOPInstanceUID at series level); a DA/TM/DT value
// or range that is not valid; a UID that is not digits and dots of at most 64 characters;
// '*'/'?' on a VR without wild-card matching; '\' in a value that is not a UID list;
// fuzzymatching etc. not true/false; limit/offset not an unsigned 32-bit decimal;
// includefield naming no attribute; limit, offset or a boolean given twice.
Result<QidoQuery> ParseQidoQuery(QidoLevel level, std::string_view query_string,
                                 const QidoLimits& limits);

// Reads one entity's stored value of `tag` in DICOM string form (multi-valued joined with
// '\', DA YYYYMMDD, TM HHMMSS.FFFFFF, DT with optional &ZZXX); nullopt when absent.
using QidoValueLookup = std::function<std::optional<std::string>(uint32_t tag)>;

// True if the entity matches every condition of `q` (PS3.4 C.2.2.2):
// - A multi-valued stored attribute matches when any of its values does. Leading and
//   trailing spaces (and NULs) of stored and query values are padding, not significant.
// - An absent attribute matches only universal matching or a wild card matching "".
// - Matching is case-sensitive. With fuzzy_matching, PN single-value and wild-card matching
//   compares the first (alphabetic) component group ASCII case-insensitively, each query
//   component being a prefix of the same stored component ("smi^jo" finds "Smith^John");
//   a query of one component may prefix any component ("jo" finds "Smith^John").
// - DA/TM/DT: a value names a period (20240101 the whole day, 1030 the whole minute) and a
//   single value matches any stored moment in it; range bounds take the start of the lower
//   period and the end of the upper one ("-1030" includes 10:30:59.999999). A stored value
//   is the moment its first digits name. DT offsets (&ZZXX) are applied when both the bound
//   and the stored value carry one; otherwise both are compared as written.
// - Combined date-time (PS3.4 C.2.2.2.5.2): when a date (DA) and its time (TM) partner are
//   both given as single values or ranges (StudyDate/StudyTime, SeriesDate/SeriesTime,
//   AcquisitionDate/Time, ContentDate/Time, InstanceCreationDate/Time,
//   PerformedProcedureStepStartDate/Time), they form one range from lower date + lower time
//   to upper date + upper time (a missing time bound is the start or end of that day): the
//   range 20240101-20240102 with 2200-0600 covers one night. A stored entity without the
//   time matches when its day overlaps that range.
bool Matches(const QidoQuery& q, const QidoValueLookup& value_of);

// '*' matches any run (including none), '?' any one byte; everything else itself, ASCII
// case folded when `ignore_case`. Linear memory, O(|pattern| * |text|) time at worst.
bool QidoWildcardMatch(std::string_view pattern, std::string_view text, bool ignore_case);

}  // namespace conduit
