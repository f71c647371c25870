// The one logging facade. Lines are logfmt, as containerd's own log uses:
//   time="2026-12-03T17:06:28.123456Z" level=info msg="vm started" sandbox=abc pid=42
// Fields bound with With() (sandbox and container ids above all) travel with the logger.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cocoon {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Process-wide settings. The sink defaults to stderr; -1 silences logging entirely.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void SetLogFd(int fd);
// Parses "debug", "info", "warn" or "error".
bool ParseLogLevel(std::string_view text, LogLevel* out);

class Logger {
 public:
  Logger() = default;

  // Returns a logger that adds key=value to every line.
  Logger With(std::string key, std::string value) const;

  void Log(LogLevel level, std::string_view msg) const;

  template <typename... Args>
  void Debug(fmt::format_string<Args...> f, Args&&... args) const {
    if (GetLogLevel() <= LogLevel::kDebug)
      Log(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> f, Args&&... args) const {
    if (GetLogLevel() <= LogLevel::kInfo)
      Log(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Warn(fmt::format_string<Args...> f, Args&&... args) const {
    if (GetLogLevel() <= LogLevel::kWarn)
      Log(LogLevel::kWarn, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Error(fmt::format_string<Args...> f, Args&&... args) const {
    Log(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...));
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// The root logger, with no fields bound.
const Logger& Log();

// Formats one logfmt line (without the trailing newline); exposed for tests.
std::string FormatLogLine(LogLevel level, std::string_view msg,
                          const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace cocoon
