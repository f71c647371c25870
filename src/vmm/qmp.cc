#include "vmm/qmp.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "common/io.h"
#include "common/log.h"

namespace cocoon::vmm {
namespace {

using Clock = std::chrono::steady_clock;

Error Closed() { return Error(Code::kUnavailable, "QMP connection closed by QEMU"); }

// Waits for `events` on fd until the deadline. Returns kDeadlineExceeded when time runs out.
Status WaitFd(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    // Rounded up: poll must not wake before the deadline and then report a timeout early.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Error(Code::kDeadlineExceeded, std::string("timed out ") + what + " QMP");
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (n > 0) return OkStatus();
    if (n < 0 && errno != EINTR) return Error::FromErrno(errno, "poll QMP socket");
  }
}

// QMP's error classes; everything QEMU reports today is GenericError.
Code CodeForErrorClass(const std::string& error_class) {
  if (error_class == "CommandNotFound") return Code::kUnimplemented;
  if (error_class == "DeviceNotFound") return Code::kNotFound;
  return Code::kFailedPrecondition;
}

std::string Snippet(const std::string& text) {
  constexpr size_t kMax = 120;
  return text.size() <= kMax ? text : text.substr(0, kMax) + "...";
}

}  // namespace

Result<QmpClient> QmpClient::Connect(const std::string& socket_path,
                                     std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  COCOON_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(socket_path, timeout));
  QmpClient client(std::move(fd), timeout);
  COCOON_RETURN_IF_ERROR(client.Handshake(deadline));
  return client;
}

Result<QmpClient> QmpClient::FromFd(UniqueFd fd, std::chrono::milliseconds timeout) {
  QmpClient client(std::move(fd), timeout);
  COCOON_RETURN_IF_ERROR(client.Handshake(Clock::now() + timeout));
  return client;
}

Status QmpClient::Handshake(Deadline deadline) {
  COCOON_ASSIGN_OR_RETURN(nlohmann::json greeting, ReadMessage(deadline));
  if (!greeting.contains("QMP")) {
    return Error(Code::kDataLoss, "expected a QMP greeting, got " + Snippet(greeting.dump()));
  }
  uint64_t id = next_id_++;
  COCOON_RETURN_IF_ERROR(Send({{"execute", "qmp_capabilities"}, {"id", id}}, deadline));
  COCOON_ASSIGN_OR_RETURN(nlohmann::json reply, ReadReply("qmp_capabilities", id, deadline));
  return OkStatus();
}

Result<nlohmann::json> QmpClient::Execute(const std::string& command,
                                          const nlohmann::json& arguments) {
  auto deadline = Clock::now() + timeout_;
  uint64_t id = next_id_++;
  nlohmann::json request = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  COCOON_RETURN_IF_ERROR(Send(request, deadline));
  return ReadReply(command, id, deadline);
}

Status QmpClient::SystemPowerdown() {
  COCOON_ASSIGN_OR_RETURN(nlohmann::json reply, Execute("system_powerdown"));
  return OkStatus();
}

Status QmpClient::Quit() {
  auto reply = Execute("quit");
  // QEMU may close the socket on its way out before the reply is flushed.
  if (!reply.ok() && reply.error().code() == Code::kUnavailable) return OkStatus();
  if (!reply.ok()) return reply.error();
  return OkStatus();
}

Status QmpClient::Send(const nlohmann::json& message, Deadline deadline) {
  if (!fd_) return Error(Code::kFailedPrecondition, "QMP client is not connected");
  std::string data = message.dump() + "\n";
  std::string_view rest = data;
  while (!rest.empty()) {
    // MSG_NOSIGNAL: a QEMU that died must give an error here, not SIGPIPE for the whole host.
    ssize_t n = ::send(fd_.get(), rest.data(), rest.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      rest.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) return Closed();
    if (errno != EAGAIN) return Error::FromErrno(errno, "send to QMP");
    COCOON_RETURN_IF_ERROR(WaitFd(fd_.get(), POLLOUT, deadline, "writing to"));
  }
  return OkStatus();
}

Result<nlohmann::json> QmpClient::ReadMessage(Deadline deadline) {
  if (!fd_) return Error(Code::kFailedPrecondition, "QMP client is not connected");
  for (;;) {
    size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto message = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (message.is_discarded() || !message.is_object()) {
        return Error(Code::kDataLoss, "malformed QMP message: " + Snippet(line));
      }
      return message;
    }
    if (buffer_.size() > kMaxMessageBytes) {
      return Error(Code::kResourceExhausted,
                   "QMP message longer than " + std::to_string(kMaxMessageBytes) + " bytes");
    }
    COCOON_RETURN_IF_ERROR(WaitFd(fd_.get(), POLLIN, deadline, "reading from"));
    char chunk[16384];
    ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n == 0) return Closed();
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return Closed();
      return Error::FromErrno(errno, "read from QMP");
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Result<nlohmann::json> QmpClient::ReadReply(const std::string& command, uint64_t id,
                                            Deadline deadline) {
  for (;;) {
    COCOON_ASSIGN_OR_RETURN(nlohmann::json message, ReadMessage(deadline));
    if (message.contains("event")) {
      Log().Debug("qmp event {} skipped", Snippet(message["event"].dump()));
      continue;
    }
    // A reply to an earlier command that timed out; not ours.
    if (message.contains("id") && message["id"] != id) continue;
    if (auto it = message.find("return"); it != message.end()) return *it;
    if (auto it = message.find("error"); it != message.end() && it->is_object()) {
      auto error_class = it->find("class");
      auto desc = it->find("desc");
      std::string class_text = error_class != it->end() && error_class->is_string()
                                   ? error_class->get<std::string>()
                                   : "UnknownError";
      std::string desc_text =
          desc != it->end() && desc->is_string() ? desc->get<std::string>() : it->dump();
      return Error(CodeForErrorClass(class_text),
                   "qmp " + command + ": " + class_text + ": " + Snippet(desc_text));
    }
    return Error(Code::kDataLoss,
                 "unexpected QMP reply to " + command + ": " + Snippet(message.dump()));
  }
}

}  // namespace cocoon::vmm
