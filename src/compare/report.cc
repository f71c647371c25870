#include "compare/report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/io.h"

namespace cocoon::compare {
namespace {

using nlohmann::json;

json OrNull(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

std::optional<Summary> Of(const std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  return Summarize(v);
}

double Round(double v, int digits) {
  double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

json CostJson(const Cost& c) {
  auto start = Of(c.startup_ms);
  auto lat = Of(c.latency_ms);
  auto r = [](const std::optional<Summary>& s, double Summary::*field, int digits) {
    return s ? json(Round((*s).*field, digits)) : json(nullptr);
  };
  json samples = json::array();
  for (double v : c.startup_ms) samples.push_back(Round(v, 1));
  return {{"startup_median_ms", r(start, &Summary::median, 1)},
          {"startup_p90_ms", r(start, &Summary::p90, 1)},
          {"startup_min_ms", r(start, &Summary::min, 1)},
          {"startup_samples_ms", samples},
          {"http_latency_avg_ms", r(lat, &Summary::mean, 3)},
          {"http_latency_min_ms", r(lat, &Summary::min, 3)},
          {"http_latency_max_ms", r(lat, &Summary::max, 3)},
          {"http_requests", c.latency_ms.size()},
          {"http_requests_per_s", OrNull(c.requests_per_s)},
          {"idle_memory_pss_mib", OrNull(c.idle_pss_mib)},
          {"errors", c.errors}};
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Num(const std::optional<double>& v, const char* unit, int digits = 1) {
  return v ? fmt::format("{:.{}f}{}", *v, digits, unit) : "-";
}

// The runtimes that have something to draw for `series`.
std::vector<const RuntimeResult*> WithData(const Report& r,
                                           const std::vector<double> Cost::*series) {
  std::vector<const RuntimeResult*> out;
  for (const auto& rt : r.runtimes) {
    if (!(rt.cost.*series).empty()) out.push_back(&rt);
  }
  return out;
}

constexpr int kWidth = 720, kLeft = 110, kRight = 60, kRow = 44, kTop = 40, kAxis = 40;
constexpr const char* kColors[] = {"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1"};

std::string SvgHead(int height, const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{3}</text>\n",
      kWidth, height, kLeft, Escape(title));
}

// A linear x axis from 0 to `max` with five ticks; returns the x of a value.
std::string Axis(double max, int y, const std::string& unit) {
  std::string s = fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n",
                              kLeft, y, kWidth - kRight, y);
  for (int i = 0; i <= 5; ++i) {
    double v = max * i / 5.0;
    double x = kLeft + (kWidth - kLeft - kRight) * i / 5.0;
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#333\"/>"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:.{5}f}</text>\n",
        x, y, y + 5, y + 18, v, max < 10 ? 1 : 0);
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", kWidth - kRight,
                   y + 34, Escape(unit));
  return s;
}

double X(double v, double max) { return kLeft + (kWidth - kLeft - kRight) * v / max; }

double NiceMax(double v) {
  if (v <= 0) return 1;
  double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

}  // namespace

json ToJson(const Report& report) {
  json host = report.host.ToJson();
  host["hostname"] = report.hostname;
  json runtimes = json::object();
  for (const auto& rt : report.runtimes) {
    json entry = {{"available", rt.available},
                  {"error", rt.error.empty() ? json(nullptr) : json(rt.error)},
                  {"isolation", rt.isolation ? rt.isolation->ToJson() : json(nullptr)},
                  {"cost", CostJson(rt.cost)}};
    runtimes[rt.name] = entry;
  }
  return {{"date", report.date},
          {"runs", report.runs},
          {"http_requests", report.requests},
          {"host", host},
          {"runtimes", runtimes}};
}

std::string ToTable(const Report& report) {
  std::vector<std::string> heads = {"", "host"};
  for (const auto& rt : report.runtimes) heads.push_back(rt.name);
  std::vector<std::vector<std::string>> rows;
  auto iso_row = [&](const std::string& label, auto get) {
    std::vector<std::string> row = {label, get(report.host)};
    for (const auto& rt : report.runtimes) {
      row.push_back(rt.isolation ? get(*rt.isolation) : (rt.available ? "failed" : "missing"));
    }
    rows.push_back(row);
  };
  iso_row("kernel", [](const Isolation& i) { return i.kernel_release; });
  iso_row("cpu", [](const Isolation& i) { return i.cpu_model.substr(0, 24); });
  iso_row("dmesg", [](const Isolation& i) { return i.dmesg_source; });
  iso_row("/proc entries", [](const Isolation& i) { return std::to_string(i.proc_entries); });
  iso_row("/sys/module", [](const Isolation& i) { return std::to_string(i.sys_modules); });
  iso_row("interfaces", [](const Isolation& i) {
    std::string s;
    for (const auto& n : i.interfaces) s += (s.empty() ? "" : " ") + n.name + "(" + n.driver + ")";
    return s.substr(0, 40);
  });
  iso_row("host pids seen", [](const Isolation& i) { return i.host_pids_visible ? "yes" : "no"; });
  iso_row("memory",
          [](const Isolation& i) { return std::to_string(i.mem_total_kib / 1024) + " MiB"; });
  auto cost_row = [&](const std::string& label, auto get) {
    std::vector<std::string> row = {label, ""};
    for (const auto& rt : report.runtimes) row.push_back(get(rt.cost));
    rows.push_back(row);
  };
  cost_row("start median", [](const Cost& c) {
    auto s = Of(c.startup_ms);
    return Num(s ? std::optional<double>(s->median) : std::nullopt, " ms", 0);
  });
  cost_row("start p90", [](const Cost& c) {
    auto s = Of(c.startup_ms);
    return Num(s ? std::optional<double>(s->p90) : std::nullopt, " ms", 0);
  });
  cost_row("http latency", [](const Cost& c) {
    auto s = Of(c.latency_ms);
    return Num(s ? std::optional<double>(s->mean) : std::nullopt, " ms", 2);
  });
  cost_row("http req/s", [](const Cost& c) { return Num(c.requests_per_s, "", 0); });
  cost_row("idle PSS", [](const Cost& c) { return Num(c.idle_pss_mib, " MiB", 1); });

  std::vector<size_t> width(heads.size(), 0);
  for (size_t i = 0; i < heads.size(); ++i) width[i] = heads[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size(); ++i) {
      s += fmt::format("{:<{}}", cells[i], width[i] + 2);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = line(heads);
  for (const auto& row : rows) out += line(row);
  for (const auto& rt : report.runtimes) {
    if (!rt.error.empty()) out += rt.name + ": " + rt.error + "\n";
    for (const auto& e : rt.cost.errors) out += rt.name + ": " + e + "\n";
  }
  return out;
}

std::string StartupSvg(const Report& report) {
  auto rts = WithData(report, &Cost::startup_ms);
  int plot_h = std::max<int>(1, static_cast<int>(rts.size())) * kRow;
  int height = kTop + plot_h + kAxis + 20;
  double max = 0;
  for (const auto* rt : rts) {
    max = std::max(max, *std::max_element(rt->cost.startup_ms.begin(), rt->cost.startup_ms.end()));
  }
  max = NiceMax(max);
  std::string s = SvgHead(
      height, fmt::format("Start time of ctr run --rm (dots: {} runs, bar: median)", report.runs));
  for (size_t i = 0; i < rts.size(); ++i) {
    int y = kTop + static_cast<int>(i) * kRow + kRow / 2;
    const char* color = kColors[i % 5];
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", kLeft - 10, y + 4,
                     Escape(rts[i]->name));
    for (double v : rts[i]->cost.startup_ms) {
      s += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{}\" r=\"4\" fill=\"{}\" fill-opacity=\"0.6\"/>\n", X(v, max),
          y, color);
    }
    double med = Summarize(rts[i]->cost.startup_ms).median;
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"{3}\" "
        "stroke-width=\"3\"/><text x=\"{4:.1f}\" y=\"{5}\">{6:.0f} ms</text>\n",
        X(med, max), y - 12, y + 12, color, X(med, max) + 6, y - 8, med);
  }
  s += Axis(max, kTop + plot_h + 4, "milliseconds");
  return s + "</svg>\n";
}

std::string LatencySvg(const Report& report) {
  auto rts = WithData(report, &Cost::latency_ms);
  int plot_h = std::max<int>(1, static_cast<int>(rts.size())) * kRow;
  int height = kTop + plot_h + kAxis + 20;
  double max = 0;
  for (const auto* rt : rts) max = std::max(max, Summarize(rt->cost.latency_ms).max);
  max = NiceMax(max);
  std::string s = SvgHead(height, fmt::format("HTTP latency of {} requests (bar: average, "
                                              "line: min to max)",
                                              report.requests));
  for (size_t i = 0; i < rts.size(); ++i) {
    int y = kTop + static_cast<int>(i) * kRow + kRow / 2;
    Summary sum = Summarize(rts[i]->cost.latency_ms);
    const char* color = kColors[i % 5];
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", kLeft - 10, y + 4,
                     Escape(rts[i]->name));
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"18\" fill=\"{}\"/>\n"
        "<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#333\"/>\n"
        "<text x=\"{:.1f}\" y=\"{}\">{:.2f} ms</text>\n",
        kLeft, y - 9, X(sum.mean, max) - kLeft, color, X(sum.min, max), y, X(sum.max, max), y,
        X(sum.mean, max) + 4, y - 12, sum.mean);
  }
  s += Axis(max, kTop + plot_h + 4, "milliseconds");
  return s + "</svg>\n";
}

Status WriteReport(const Report& report, const std::string& dir) {
  COCOON_RETURN_IF_ERROR(MakeDirs(dir));
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(dir + "/startup.svg", StartupSvg(report)));
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(dir + "/latency.svg", LatencySvg(report)));
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(dir + "/report.json", ToJson(report).dump(2) + "\n"));
  std::string md = "# cocoon compare\n\n";
  md += fmt::format("{} on `{}`: {} start-time runs, {} sequential HTTP requests per runtime.\n\n",
                    report.date, Escape(report.hostname), report.runs, report.requests);
  md += "Produced by `cocoon compare`; the same figures are in `report.json`.\n\n";
  md += "## Isolation and cost\n\n```\n" + ToTable(report) + "```\n\n";
  md += "- kernel: the release `uname -r` shows inside (the host's own in the host column).\n";
  md +=
      "- dmesg: whose kernel log a container can read: `host`, its `own kernel`, a "
      "`synthetic` one, or `none` (refused).\n";
  md +=
      "- host pids seen: whether a marker process on the host shows in the container's "
      "`/proc`.\n";
  md +=
      "- idle PSS: proportional set size of every host process of one idle container (shim, "
      "runtime, VMM), so shared pages count once.\n\n";
  md += "## Start time\n\n![start time](startup.svg)\n\n";
  md += "## HTTP latency\n\n![HTTP latency](latency.svg)\n";
  return WriteFileAtomic(dir + "/report.md", md);
}

}  // namespace cocoon::compare
