// StudyMatch: one study a PACS reports for a query (C-FIND at STUDY level, or QIDO-RS
// /studies), in Conduit's own types. Holds patient identifiers: never log it.
#pragma once

#include <string>
#include <vector>

#include "core/ids.h"

namespace conduit {

struct StudyMatch {
  StudyUid study_uid;
  std::string patient_id;
  std::string study_date;               // YYYYMMDD; empty if the PACS gave none
  std::vector<std::string> modalities;  // ModalitiesInStudy
  std::string study_description;
  std::string body_part;                 // BodyPartExamined, if the PACS gives it for studies
  std::vector<std::string> sop_classes;  // SOPClassesInStudy, if the PACS gives them
  int instance_count = -1;               // NumberOfStudyRelatedInstances; -1: not given
};

}  // namespace conduit
