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

}  // namespace conduit
