#include "core/sha256.h"
#include "store/index.h"

namespace conduit {

std::string StudyRef(const StudyUid& study) { return Sha256Hex(study.str()).substr(0, 16); }

}  // namespace conduit
