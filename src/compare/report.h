// The results of `cocoon compare` and the three ways it shows them: a terminal table, one JSON
// document, and a Markdown report with SVG charts that a browser shows.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "compare/measure.h"
#include "compare/probe.h"

namespace cocoon::compare {

struct Cost {
  std::vector<double> startup_ms;  // one per run of `ctr run --rm IMAGE ID echo test`
  std::vector<double> latency_ms;  // one per sequential HTTP request
  std::optional<double> requests_per_s;
  std::optional<double> idle_pss_mib;
  std::vector<std::string> errors;  // a measurement that failed says why here
};

struct RuntimeResult {
  std::string name;
  bool available = false;
  std::string error;  // why it is unavailable or failed
  std::optional<Isolation> isolation;
  Cost cost;
};

struct Report {
  std::string date;  // UTC, ISO 8601
  std::string hostname;
  Isolation host;
  int runs = 0;
  int requests = 0;
  std::vector<RuntimeResult> runtimes;
};

// {"host": {...}, "runtimes": {"<name>": {"available", "error", "isolation", "cost"}}, ...}: cost
// fields that could not be measured are null, with the reason in cost.errors.
nlohmann::json ToJson(const Report& report);
// A table with one column per runtime, for the terminal.
std::string ToTable(const Report& report);
// SVG charts: start times of each run per runtime, and HTTP latency (average with min and max).
std::string StartupSvg(const Report& report);
std::string LatencySvg(const Report& report);
// Writes report.md, startup.svg, latency.svg and report.json into `dir` (made if missing).
Status WriteReport(const Report& report, const std::string& dir);

}  // namespace cocoon::compare
