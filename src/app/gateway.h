// Gateway: the composition root. Builds every long-lived component from a Config, wires them,
// starts them in dependency order and stops them in reverse. Owns every thread's owner.
#pragma once

#include <filesystem>
#include <memory>
#include <thread>

#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/status.h"

namespace conduit {

class Gateway {
 public:
  // Opens the spool and index under config.node.data_dir and builds every component.
  // Errors: kInvalidArgument for an unusable data dir or index.
  static Result<std::unique_ptr<Gateway>> Create(Config config);
  ~Gateway();

  // Resumes unfinished jobs and assembly, then opens the DICOM and HTTP listeners.
  // Errors: kUnavailable if a port cannot be bound.
  Status Start();
  // Closes listeners, then stops the assembler ticker and the job engine. Idempotent.
  void Stop();

  int dicom_port() const;
  int http_port() const;

 private:
  struct Parts;
  explicit Gateway(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace conduit
