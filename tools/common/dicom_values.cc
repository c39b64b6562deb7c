#include "common/dicom_values.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace conduit::tools {

std::string DecimalString(double v) {
  char buf[40];
  for (int precision = 10; precision > 1; --precision) {
    int n = std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (n > 0 && n <= 16) return buf;
  }
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}

DicomDateTime DicomNow() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[16];
  char time[16];
  std::strftime(date, sizeof date, "%Y%m%d", &tm);
  std::strftime(time, sizeof time, "%H%M%S", &tm);
  return {date, time};
}

}  // namespace conduit::tools
