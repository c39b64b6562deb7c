// Metrics: counters, gauges and histograms rendered in Prometheus text format (/metrics).
// Names follow Prometheus conventions (conduit_instances_received_total, ..._seconds).
// `labels` is the label set as Prometheus writes it, e.g. R"(state="queued")", or empty.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace conduit {

class Metrics {
 public:
  // Declares a metric's type ("counter", "gauge", "histogram") and help text. Optional:
  // undeclared metrics render as untyped.
  void Describe(std::string_view name, std::string_view type, std::string_view help);
  void Add(std::string_view name, double delta, std::string_view labels = "");
  void Set(std::string_view name, double value, std::string_view labels = "");
  // Histogram observation in seconds, buckets 5 ms .. 10 min.
  void Observe(std::string_view name, double seconds, std::string_view labels = "");
  double Value(std::string_view name, std::string_view labels = "") const;
  std::string RenderPrometheus() const;

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>, std::less<>> meta_;  // type, help
  std::map<std::string, std::map<std::string, double>, std::less<>> values_;
  std::map<std::string, std::map<std::string, Histogram>, std::less<>> histograms_;
};

}  // namespace conduit
