// A sleep that a std::stop_token ends early, for the DICOMweb tool simulator's threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>

namespace conduit::tools {

// Sleeps for `duration` or until `stop` is requested; returns false if stop was requested.
inline bool SleepUnlessStopped(std::chrono::milliseconds duration, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, duration, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace conduit::tools
