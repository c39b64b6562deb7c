// Fresh DICOM UIDs for objects Conduit names itself (UPS workitems, commitment transactions).
#pragma once

#include <string>

namespace conduit {

// A "2.25." UID (ISO/IEC 9834-8, PS3.5 B.2) from 128 random bits.
std::string NewDicomUid();

}  // namespace conduit
