#include "compare/measure.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <sstream>
#include <thread>

#include "common/io.h"
#include "common/unique_fd.h"

namespace cocoon::compare {
namespace {

using Clock = std::chrono::steady_clock;

double Rank(const std::vector<double>& sorted, double q) {
  size_t n = sorted.size();
  size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
  return sorted[std::clamp<size_t>(i, 1, n) - 1];
}

Status WaitFd(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(Code::kDeadlineExceeded, std::string("HTTP ") + what);
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return OkStatus();
    if (n < 0 && errno != EINTR) return Error::FromErrno(errno, "poll");
  }
}

std::string Comm(pid_t pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/comm");
  if (!text.ok()) return "";
  std::string s = *text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

Summary Summarize(std::vector<double> values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.min = values.front();
  s.max = values.back();
  s.median = Rank(values, 0.5);
  s.p90 = Rank(values, 0.9);
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  return s;
}

Result<double> HttpGet(const std::string& ip, uint16_t port, const std::string& expect,
                       std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return Error(Code::kInvalidArgument, "'" + ip + "' is not an IPv4 address");
  }
  auto start = Clock::now();
  auto deadline = start + timeout;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::FromErrno(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return Error::FromErrno(errno, "connect to " + ip);
  }
  COCOON_RETURN_IF_ERROR(WaitFd(fd.get(), POLLOUT, deadline, "connect"));
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return Error::FromErrno(err, "connect to " + ip + ":" + std::to_string(port));
  const std::string request = "GET / HTTP/1.0\r\nHost: " + ip + "\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return Error::FromErrno(errno, "send to " + ip);
  }
  std::string reply;
  char buf[4096];
  for (;;) {
    COCOON_RETURN_IF_ERROR(WaitFd(fd.get(), POLLIN, deadline, "reply"));
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Error::FromErrno(errno, "recv from " + ip);
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > (1 << 20)) return Error(Code::kOutOfRange, "HTTP reply over 1 MiB");
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (reply.rfind("HTTP/1.", 0) != 0 || reply.find(" 200 ") == std::string::npos ||
      reply.find(expect) == std::string::npos) {
    return Error(Code::kUnknown, "unexpected HTTP reply: " + reply.substr(0, 200));
  }
  return ms;
}

Result<double> HttpThroughput(const std::string& ip, uint16_t port, const std::string& expect,
                              int connections, std::chrono::milliseconds duration) {
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> failed{0};
  std::string first_error;
  std::mutex mu;
  auto until = Clock::now() + duration;
  std::vector<std::thread> clients;
  for (int c = 0; c < connections; ++c) {
    clients.emplace_back([&] {
      while (Clock::now() < until) {
        auto r = HttpGet(ip, port, expect);
        if (r.ok()) {
          ++done;
          continue;
        }
        ++failed;
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.empty()) first_error = r.error().message();
      }
    });
  }
  for (auto& t : clients) t.join();
  if (done == 0) return Error(Code::kUnavailable, "no request succeeded: " + first_error);
  return static_cast<double>(done.load()) / std::chrono::duration<double>(duration).count();
}

Result<uint64_t> PssKib(pid_t pid) {
  COCOON_ASSIGN_OR_RETURN(std::string text,
                          ReadFile("/proc/" + std::to_string(pid) + "/smaps_rollup"));
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("Pss:", 0) == 0) return static_cast<uint64_t>(std::stoull(line.substr(4)));
  }
  return Error(Code::kNotFound, "no Pss line for pid " + std::to_string(pid));
}

std::map<pid_t, pid_t> ProcessParents() {
  std::map<pid_t, pid_t> parents;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return parents;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    if (!stat.ok()) continue;
    size_t close = stat->rfind(')');  // the name may hold spaces and parentheses
    if (close == std::string::npos) continue;
    std::istringstream rest(stat->substr(close + 2));
    char state;
    pid_t ppid = 0;
    if (rest >> state >> ppid) parents[pid] = ppid;
  }
  ::closedir(d);
  return parents;
}

std::vector<pid_t> ProcessTree(pid_t root, const std::map<pid_t, pid_t>& parents) {
  std::vector<pid_t> tree = {root};
  for (size_t i = 0; i < tree.size(); ++i) {
    for (const auto& [pid, ppid] : parents) {
      if (ppid == tree[i]) tree.push_back(pid);
    }
  }
  return tree;
}

pid_t AncestorNamed(pid_t pid, const std::string& prefix, const std::map<pid_t, pid_t>& parents) {
  for (int depth = 0; pid > 1 && depth < 64; ++depth) {
    if (Comm(pid).rfind(prefix, 0) == 0) return pid;
    auto it = parents.find(pid);
    if (it == parents.end()) return 0;
    pid = it->second;
  }
  return 0;
}

}  // namespace cocoon::compare
