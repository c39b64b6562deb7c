// DICOM UIDs: fresh ones for objects Conduit names itself (UPS workitems, commitment
// transactions), and the syntax check for those peers send.
#pragma once

#include <string>
#include <string_view>

namespace conduit {

// A "2.25." UID (ISO/IEC 9834-8, PS3.5 B.2) from 128 random bits.
std::string NewDicomUid();

// Whether `s` is a DICOM UID (PS3.5 9.1): 1 to 64 characters, dot-separated numbers without
// leading zeros. For what Conduit makes or checks strictly (commitment reports, workitems).
bool IsDicomUidText(std::string_view s);

// The same, but a component may have leading zeros ("1.2.840.0113"), as some devices write
// them: for naming objects Conduit already holds (DICOMweb paths and URLs), so that a
// non-conformant UID stays retrievable. Still no empty component, so ".." is never a UID.
bool IsDicomUidAsFound(std::string_view s);

}  // namespace conduit
