// Strong types for identifiers that cross components: a StudyUid is never a SeriesUid.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace conduit {

template <typename Tag>
class StringId {
 public:
  StringId() = default;
  explicit StringId(std::string v) : v_(std::move(v)) {}
  const std::string& str() const { return v_; }
  bool empty() const { return v_.empty(); }
  auto operator<=>(const StringId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const StringId& id) { return os << id.v_; }

 private:
  std::string v_;
};

struct StudyUidTag {};
struct SeriesUidTag {};
struct SopInstanceUidTag {};
struct SopClassUidTag {};
struct AeTitleTag {};

using StudyUid = StringId<StudyUidTag>;
using SeriesUid = StringId<SeriesUidTag>;
using SopInstanceUid = StringId<SopInstanceUidTag>;
using SopClassUid = StringId<SopClassUidTag>;
using AeTitle = StringId<AeTitleTag>;

// JobId: the index's row id of a job; positive when valid.
struct JobId {
  int64_t value = 0;
  auto operator<=>(const JobId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, JobId id) { return os << id.value; }
};

}  // namespace conduit

template <typename Tag>
struct std::hash<conduit::StringId<Tag>> {
  size_t operator()(const conduit::StringId<Tag>& id) const {
    return std::hash<std::string>{}(id.str());
  }
};
