#include "app/ingest_service.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

// A fault in our own spool or index must never read to the sender as "your object is bad"
// (C000) or "you may not" (0124): it is a processing failure (0110), or out of resources
// (A700, retry later), with the message kept for our log.
TEST(StorageErrorForSenderTest, BlamesUsNotTheSender) {
  EXPECT_EQ(StorageErrorForSender(ResourceExhausted("disk full")).code(),
            StatusCode::kResourceExhausted);
  for (const Status& ours :
       {InvalidArgument("index: file is not a database"),
        PermissionDenied("spool: rename: Permission denied"), DataLoss("index: disk I/O error"),
        Unavailable("index: database is locked"), NotFound("spool: no incoming file"),
        FailedPrecondition("index: constraint failed"), Internal("index: misuse")}) {
    const Status told = StorageErrorForSender(ours);
    EXPECT_EQ(told.code(), StatusCode::kInternal) << ours.ToString();
    EXPECT_EQ(told.message(), ours.message());
  }
  EXPECT_TRUE(StorageErrorForSender(Status::Ok()).ok());
}

}  // namespace
}  // namespace conduit
