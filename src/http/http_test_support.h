// Test support for the HTTP front end's tests: pieces several tests need the same way.
#pragma once

#include <filesystem>
#include <string>

#include "http/dicomweb_context.h"

namespace conduit::testing {

// A JobResultSink for tests that serve reads only: every result is refused
// (kFailedPrecondition), and the file it came in is left alone.
class RefusingJobResultSink : public JobResultSink {
 public:
  Status OnJobResult(JobId, const ReceivedInstance&) override {
    return FailedPrecondition("this test takes no results");
  }
  Status OnUnreadableJobResult(JobId, const std::filesystem::path&, const std::string&) override {
    return FailedPrecondition("this test takes no results");
  }
};

}  // namespace conduit::testing
