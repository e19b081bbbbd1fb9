// Process-wide Prometheus metrics: counters and latency histograms, rendered in the
// text exposition format at GET /metrics. Thread-safe; cheap enough for every request
// (one mutex, a map lookup). Names follow Prometheus conventions (toani_*_total,
// *_seconds). docs/operations-config.md lists every metric.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace toani::server {

class Metrics {
 public:
  static Metrics& Global();

  // labels: {{"route","/v1/authorize"},{"code","200"}}; values are escaped.
  void Inc(const std::string& name, const std::map<std::string, std::string>& labels = {},
           double by = 1);
  void Set(const std::string& name, const std::map<std::string, std::string>& labels, double v);
  void Observe(const std::string& name, const std::map<std::string, std::string>& labels,
               double seconds);
  // HELP text (and TYPE) for a metric family; unknown families are rendered untyped.
  void Describe(const std::string& name, const std::string& type, const std::string& help);

  std::string Render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // cumulative counts per bound in kBounds
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> help_;  // name -> type, help
  std::map<std::string, std::map<std::string, double>> values_;      // name -> labels -> v
  std::map<std::string, std::map<std::string, Histogram>> hist_;
};

}  // namespace toani::server
