#include "core/dicom_uid.h"

#include <cstdint>
#include <random>

namespace conduit {

std::string NewDicomUid() {
  std::random_device rd;
  unsigned __int128 value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 32) | static_cast<uint32_t>(rd());
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  return "2.25." + digits;
}

namespace {

bool IsUid(std::string_view s, bool leading_zeros) {
  if (s.empty() || s.size() > 64) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) dot = s.size();
    std::string_view part = s.substr(start, dot - start);
    if (part.empty()) return false;
    if (!leading_zeros && part.size() > 1 && part[0] == '0') return false;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
    }
    start = dot + 1;
  }
  return true;
}

}  // namespace

bool IsDicomUidText(std::string_view s) { return IsUid(s, /*leading_zeros=*/false); }

bool IsDicomUidAsFound(std::string_view s) { return IsUid(s, /*leading_zeros=*/true); }

}  // namespace conduit
