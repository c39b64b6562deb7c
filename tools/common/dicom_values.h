// Formatting of DICOM value representations shared by the tools.
#pragma once

#include <string>

namespace conduit::tools {

// A Decimal String (DS) value for `v`: as precise as fits DICOM's 16 characters.
std::string DecimalString(double v);

// Now in UTC as a DICOM date ("YYYYMMDD") and time ("HHMMSS").
struct DicomDateTime {
  std::string date;
  std::string time;
};
DicomDateTime DicomNow();

}  // namespace conduit::tools
