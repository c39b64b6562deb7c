// Fills a DCMTK dataset attribute by attribute, keeping the first failure as a Status that
// names the attribute, so long runs of insertions read as a list rather than a ladder of ifs.
#pragma once

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dctag.h>

#include <string>

#include "core/status.h"

namespace conduit::tools {

class DatasetPutter {
 public:
  // `context` prefixes error messages, e.g. "secondary capture".
  DatasetPutter(DcmItem& item, std::string context) : item_(item), context_(std::move(context)) {}

  DatasetPutter& Str(const DcmTagKey& tag, const std::string& value) {
    Keep(item_.putAndInsertOFStringArray(tag, value.c_str()), tag);
    return *this;
  }
  DatasetPutter& U16(const DcmTagKey& tag, Uint16 value) {
    Keep(item_.putAndInsertUint16(tag, value), tag);
    return *this;
  }
  DatasetPutter& S16(const DcmTagKey& tag, Sint16 value) {
    Keep(item_.putAndInsertSint16(tag, value), tag);
    return *this;
  }
  DatasetPutter& Empty(const DcmTagKey& tag) {
    Keep(item_.insertEmptyElement(tag), tag);
    return *this;
  }
  // The first item of sequence `tag` (created if needed); nullptr after a failure.
  DcmItem* SeqItem(const DcmTagKey& tag) {
    DcmItem* out = nullptr;
    Keep(item_.findOrCreateSequenceItem(tag, out, 0), tag);
    return out;
  }
  // Adds a code sequence item (value, scheme, meaning) as the first item of `tag`.
  DatasetPutter& Code(const DcmTagKey& tag, const char* value, const char* scheme,
                      const char* meaning) {
    if (DcmItem* item = SeqItem(tag)) {
      DatasetPutter inner(*item, context_);
      inner.Str(DCM_CodeValue, value)
          .Str(DCM_CodingSchemeDesignator, scheme)
          .Str(DCM_CodeMeaning, meaning);
      if (status_.ok()) status_ = inner.status();
    }
    return *this;
  }
  const Status& status() const { return status_; }

 private:
  void Keep(const OFCondition& cond, const DcmTagKey& tag) {
    if (cond.bad() && status_.ok()) {
      status_ = Internal(context_ + ": set " + DcmTag(tag).getTagName() + ": " + cond.text());
    }
  }
  DcmItem& item_;
  std::string context_;
  Status status_;
};

}  // namespace conduit::tools
