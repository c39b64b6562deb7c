// DeidSettings: everything the de-identifier needs to know from the policy for one transfer
// (one tool): profile options, safe private attributes, date shifting, burned-in text rules.
// The governance component builds it from the policy file; `conduit deid` from --policy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deid/profile.h"

namespace conduit {

// A private attribute the policy deems safe: kept under Retain Safe Private when its block's
// private creator matches `creator` exactly (trailing spaces ignored) and its element's low
// byte is `element`, in private group `group` (odd).
struct SafePrivateAttribute {
  uint16_t group = 0;
  std::string creator;
  uint8_t element = 0;
};

// A rectangle of pixels to blank, in pixel coordinates of each frame (columns, rows).
struct PixelRect {
  int x = 0, y = 0, width = 0, height = 0;
};

// Regions to blank in instances whose Modality, Manufacturer and Manufacturer's Model Name
// match these globs (case-insensitive, * and ?; empty matches anything).
struct PixelCleaningRule {
  std::string modality, manufacturer, model;
  std::vector<PixelRect> regions;
};

struct BurnedInTextRules {
  // Refuse instances with Burned In Annotation (0028,0301) = YES unless a cleaning rule
  // matches them.
  bool refuse_burned_in_annotation = true;
  // Kinds at risk of text in the pixels, refused unless allowed or a cleaning rule matches:
  // ultrasound (Modality US or a US SOP class), secondary capture (SC SOP classes), scanned
  // documents (Encapsulated PDF/CDA/STL/OBJ/MTL and Modality DOC).
  bool allow_ultrasound = false;
  bool allow_secondary_capture = false;
  bool allow_scanned_documents = false;
  std::vector<PixelCleaningRule> cleaning;
};

struct DeidSettings {
  ProfileOptions options;
  std::vector<SafePrivateAttribute> safe_private;
  // Retain Longitudinal Temporal Information with Modified Dates: every date of a patient
  // moves back by the same number of days, chosen by the key in [min, max] (min >= 1).
  int date_shift_min_days = 1;
  int date_shift_max_days = 365;
  BurnedInTextRules burned_in;
  // Recorded in the audit and in De-identification Method (0012,0063).
  std::string policy_name = "built-in national default";
  std::string policy_hash;  // SHA-256 hex of the policy file; "" for the built-in default
};

}  // namespace conduit
