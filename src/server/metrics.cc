#include "server/metrics.h"

#include <cstdio>

namespace toani::server {
namespace {

constexpr double kBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                              0.1,    0.25,  0.5,    1,     2.5,  10};

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string LabelText(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) s += ",";
    first = false;
    s += k + "=\"" + Escape(v) + "\"";
  }
  return s + "}";
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Adds `le` to an already rendered label set.
std::string WithLe(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}

}  // namespace

Metrics& Metrics::Global() {
  static Metrics* m = new Metrics();  // never destroyed: used until exit from any thread
  return *m;
}

void Metrics::Inc(const std::string& name, const std::map<std::string, std::string>& labels,
                  double by) {
  std::string key = LabelText(labels);  // built before the lock: every request counts
  std::lock_guard<std::mutex> l(mu_);
  values_[name][key] += by;
}

void Metrics::Set(const std::string& name, const std::map<std::string, std::string>& labels,
                  double v) {
  std::string key = LabelText(labels);
  std::lock_guard<std::mutex> l(mu_);
  values_[name][key] = v;
}

void Metrics::Observe(const std::string& name, const std::map<std::string, std::string>& labels,
                      double seconds) {
  std::string key = LabelText(labels);
  std::lock_guard<std::mutex> l(mu_);
  Histogram& h = hist_[name][key];
  if (h.buckets.empty()) h.buckets.assign(std::size(kBounds), 0);
  for (size_t i = 0; i < std::size(kBounds); ++i) {
    if (seconds <= kBounds[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::Describe(const std::string& name, const std::string& type, const std::string& help) {
  std::lock_guard<std::mutex> l(mu_);
  help_[name] = {type, help};
}

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  auto header = [&](const std::string& name) {
    auto it = help_.find(name);
    if (it == help_.end()) return;
    out += "# HELP " + name + " " + it->second.second + "\n";
    out += "# TYPE " + name + " " + it->second.first + "\n";
  };
  for (const auto& [name, series] : values_) {
    header(name);
    for (const auto& [labels, v] : series) out += name + labels + " " + Num(v) + "\n";
  }
  for (const auto& [name, series] : hist_) {
    header(name);
    for (const auto& [labels, h] : series) {
      for (size_t i = 0; i < std::size(kBounds); ++i)
        out += name + "_bucket" + WithLe(labels, Num(kBounds[i])) + " " +
               std::to_string(h.buckets[i]) + "\n";
      out += name + "_bucket" + WithLe(labels, "+Inf") + " " + std::to_string(h.count) + "\n";
      out += name + "_sum" + labels + " " + Num(h.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace toani::server
