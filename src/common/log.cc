#include "common/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <ctime>

#include "common/io.h"

namespace cocoon {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_fd{STDERR_FILENO};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// Quotes a value when logfmt needs it: spaces, quotes, '=' or control characters.
void AppendValue(std::string* out, std::string_view v) {
  bool quote = v.empty();
  for (char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\') quote = true;
  }
  if (!quote) {
    out->append(v);
    return;
  }
  out->push_back('"');
  for (char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out->append(fmt::format("\\x{:02x}", static_cast<unsigned char>(c)));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
void SetLogFd(int fd) { g_fd = fd; }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug" || text == "trace") {
    *out = LogLevel::kDebug;
  } else if (text == "info") {
    *out = LogLevel::kInfo;
  } else if (text == "warn" || text == "warning") {
    *out = LogLevel::kWarn;
  } else if (text == "error") {
    *out = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

std::string FormatLogLine(LogLevel level, std::string_view msg,
                          const std::vector<std::pair<std::string, std::string>>& fields) {
  timeval tv;
  ::gettimeofday(&tv, nullptr);
  tm utc;
  ::gmtime_r(&tv.tv_sec, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string line = fmt::format("time=\"{}.{:06d}Z\" level={} msg=", stamp,
                                 static_cast<int>(tv.tv_usec), LevelName(level));
  AppendValue(&line, msg);
  for (const auto& [k, v] : fields) {
    line.push_back(' ');
    line.append(k);
    line.push_back('=');
    AppendValue(&line, v);
  }
  return line;
}

Logger Logger::With(std::string key, std::string value) const {
  Logger copy = *this;
  copy.fields_.emplace_back(std::move(key), std::move(value));
  return copy;
}

void Logger::Log(LogLevel level, std::string_view msg) const {
  if (level < GetLogLevel()) return;
  int fd = g_fd.load();
  if (fd < 0) return;
  std::string line = FormatLogLine(level, msg, fields_);
  line.push_back('\n');
  // One write per line keeps lines whole when threads log at once; errors (EPIPE while nobody
  // reads a log FIFO) are deliberately ignored.
  (void)WriteAll(fd, line);
}

const Logger& Log() {
  static const Logger root;
  return root;
}

}  // namespace cocoon
