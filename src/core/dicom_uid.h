// DICOM UIDs: fresh ones for objects Conduit names itself (UPS workitems, commitment
// transactions), and the syntax check for those peers send.
#pragma once

#include <string>
#include <string_view>

namespace conduit {

// A "2.25." UID (ISO/IEC 9834-8, PS3.5 B.2) from 128 random bits.
std::string NewDicomUid();

// Whether `s` is a DICOM UID (PS3.5 9.1): 1 to 64 characters, dot-separated numbers without
// leading zeros.
bool IsDicomUidText(std::string_view s);

}  // namespace conduit
