#include "core/iso_time.h"

#include <chrono>
#include <cstdio>

namespace conduit {

std::string FormatIsoTime(TimePoint t, IsoPrecision precision) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd(day);
  const hh_mm_ss hms(ms - day);
  char buf[40];
  const int n = std::snprintf(
      buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld", static_cast<int>(ymd.year()),
      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
      static_cast<long long>(hms.hours().count()), static_cast<long long>(hms.minutes().count()),
      static_cast<long long>(hms.seconds().count()));
  std::string out(buf, n > 0 ? static_cast<size_t>(n) : 0);
  if (precision == IsoPrecision::kMillis) {
    std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(hms.subseconds().count()));
    out += buf;
  }
  return out + "Z";
}

}  // namespace conduit
