// The task service's state machine, error codes and events, over a fake backend.
#include "shim/task_service.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <future>
#include <thread>

#include "common/io.h"
#include "proto/containerd_events.pb.h"
#include "shim/timestamps.h"
#include "ttrpc/client.h"

namespace cocoon::shim {
namespace {

namespace typespb = ::containerd::v1::types;

class FakeBackend : public TaskBackend {
 public:
  Result<uint32_t> Create(const taskpb::CreateTaskRequest&) override {
    if (fail_create) return Error(Code::kInternal, "boot failed");
    return 4242u;
  }
  Status Start(const std::string&) override { return OkStatus(); }
  Result<uint32_t> Wait(const std::string&) override { return exit_future.get(); }
  Status Kill(const std::string&, uint32_t signal, bool) override {
    last_signal = signal;
    return OkStatus();
  }
  Status CloseStdin(const std::string&) override { return OkStatus(); }
  Status ResizePty(const std::string&, uint32_t, uint32_t) override { return OkStatus(); }
  Status Delete(const std::string&) override {
    ++deletes;
    return OkStatus();
  }

  bool fail_create = false;
  std::promise<uint32_t> exit_promise;
  std::shared_future<uint32_t> exit_future = exit_promise.get_future().share();
  uint32_t last_signal = 0;
  int deletes = 0;
};

class RecordingSink : public EventSink {
 public:
  void Publish(const std::string& topic, const google::protobuf::Message& event) override {
    std::lock_guard<std::mutex> lock(mu);
    topics.push_back(topic);
    if (topic == "/tasks/exit") exit.CopyFrom(event);
  }
  std::vector<std::string> Topics() {
    std::lock_guard<std::mutex> lock(mu);
    return topics;
  }
  std::mutex mu;
  std::vector<std::string> topics;
  ::containerd::events::TaskExit exit;
};

class TaskServiceTest : public ::testing::Test {
 protected:
  TaskServiceTest() : service(&backend, &sink, [this] { ++shutdowns; }) {}

  void CreateT1() {
    taskpb::CreateTaskRequest req;
    req.set_id("t1");
    req.set_bundle("/b/t1");
    req.set_stdout("/fifo/t1-stdout");
    auto resp = service.Create(req);
    ASSERT_TRUE(resp.ok()) << resp.error().message();
    EXPECT_EQ(resp->pid(), 4242u);
  }
  taskpb::StateResponse StateOf(const std::string& id) {
    taskpb::StateRequest req;
    req.set_id(id);
    auto st = service.State(req);
    EXPECT_TRUE(st.ok());
    return st.ok() ? *st : taskpb::StateResponse();
  }
  template <typename Req>
  Req WithId(const std::string& id) {
    Req r;
    r.set_id(id);
    return r;
  }

  FakeBackend backend;
  RecordingSink sink;
  int shutdowns = 0;
  TaskService service;
};

TEST_F(TaskServiceTest, LifecycleWithEventsInOrder) {
  CreateT1();
  taskpb::StateResponse created = StateOf("t1");
  EXPECT_EQ(created.status(), typespb::CREATED);
  EXPECT_EQ(created.pid(), 4242u);
  EXPECT_EQ(created.bundle(), "/b/t1");
  EXPECT_EQ(created.stdout(), "/fifo/t1-stdout");
  EXPECT_EQ(created.exited_at().seconds(), kGoZeroTimeSeconds);

  // Wait may come before Start and must block until the exit.
  auto waiting = std::async(std::launch::async,
                            [&] { return service.Wait(WithId<taskpb::WaitRequest>("t1")); });
  ASSERT_TRUE(service.Start(WithId<taskpb::StartRequest>("t1")).ok());
  EXPECT_EQ(StateOf("t1").status(), typespb::RUNNING);
  auto again = service.Start(WithId<taskpb::StartRequest>("t1"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::kFailedPrecondition);
  auto busy = service.Delete(WithId<taskpb::DeleteRequest>("t1"));
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);

  backend.exit_promise.set_value(3);
  auto waited = waiting.get();
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_status(), 3u);
  taskpb::StateResponse stopped = StateOf("t1");
  EXPECT_EQ(stopped.status(), typespb::STOPPED);
  EXPECT_EQ(stopped.exit_status(), 3u);
  EXPECT_EQ(stopped.exited_at().seconds(), waited->exited_at().seconds());
  EXPECT_EQ(stopped.exited_at().nanos(), waited->exited_at().nanos());
  EXPECT_GT(stopped.exited_at().seconds(), 1700000000);

  auto killed = service.Kill([] {
    taskpb::KillRequest k;
    k.set_id("t1");
    k.set_signal(SIGKILL);
    return k;
  }());
  ASSERT_FALSE(killed.ok());
  EXPECT_EQ(killed.error().code(), Code::kNotFound);
  EXPECT_EQ(killed.error().message(), "process already finished");

  auto deleted = service.Delete(WithId<taskpb::DeleteRequest>("t1"));
  ASSERT_TRUE(deleted.ok()) << deleted.error().message();
  EXPECT_EQ(deleted->exit_status(), 3u);
  EXPECT_EQ(deleted->pid(), 4242u);
  EXPECT_EQ(deleted->exited_at().nanos(), waited->exited_at().nanos());
  EXPECT_EQ(backend.deletes, 1);
  EXPECT_EQ(sink.Topics(), (std::vector<std::string>{"/tasks/create", "/tasks/start", "/tasks/exit",
                                                     "/tasks/delete"}));
  EXPECT_EQ(sink.exit.container_id(), "t1");
  EXPECT_EQ(sink.exit.id(), "t1");
  EXPECT_EQ(sink.exit.exit_status(), 3u);

  taskpb::StateRequest gone;
  gone.set_id("t1");
  EXPECT_EQ(service.State(gone).error().code(), Code::kNotFound);
  ASSERT_TRUE(service.Shutdown(taskpb::ShutdownRequest()).ok());
  EXPECT_EQ(shutdowns, 1);
}

TEST_F(TaskServiceTest, ErrorCodes) {
  taskpb::StateRequest unknown;
  unknown.set_id("nope");
  auto st = service.State(unknown);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kNotFound);
  EXPECT_EQ(st.error().message(), "container nope not found");

  CreateT1();
  taskpb::CreateTaskRequest dup;
  dup.set_id("t1");
  dup.set_bundle("/b/t1");
  EXPECT_EQ(service.Create(dup).error().code(), Code::kAlreadyExists);

  taskpb::StateRequest exec;
  exec.set_id("t1");
  exec.set_exec_id("e1");
  EXPECT_EQ(service.State(exec).error().code(), Code::kNotFound);

  taskpb::CreateTaskRequest file;
  file.set_id("t2");
  file.set_bundle("/b/t2");
  file.set_stdout("file:///var/log/x");
  EXPECT_EQ(service.Create(file).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(service.Create(taskpb::CreateTaskRequest()).error().code(), Code::kInvalidArgument);

  taskpb::KillRequest zero;
  zero.set_id("t1");
  EXPECT_EQ(service.Kill(zero).error().code(), Code::kInvalidArgument);

  // A shim with a container keeps running on Shutdown.
  ASSERT_TRUE(service.Shutdown(taskpb::ShutdownRequest()).ok());
  EXPECT_EQ(shutdowns, 0);

  taskpb::ConnectRequest conn;
  conn.set_id("t1");
  auto c = service.Connect(conn);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->task_pid(), 4242u);
  EXPECT_EQ(c->shim_pid(), static_cast<uint32_t>(::getpid()));
  conn.set_id("other");
  EXPECT_EQ(service.Connect(conn)->task_pid(), 0u);
}

TEST_F(TaskServiceTest, FailedCreateLeavesNothing) {
  backend.fail_create = true;
  taskpb::CreateTaskRequest req;
  req.set_id("t1");
  req.set_bundle("/b/t1");
  auto r = service.Create(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "boot failed");
  EXPECT_EQ(service.size(), 0u);
  EXPECT_TRUE(sink.Topics().empty());
}

TEST_F(TaskServiceTest, KillingACreatedTaskStopsItWith128PlusSignal) {
  CreateT1();
  auto waiting = std::async(std::launch::async,
                            [&] { return service.Wait(WithId<taskpb::WaitRequest>("t1")); });
  taskpb::KillRequest k;
  k.set_id("t1");
  k.set_signal(SIGKILL);
  k.set_all(true);
  ASSERT_TRUE(service.Kill(k).ok());
  EXPECT_EQ(backend.last_signal, static_cast<uint32_t>(SIGKILL));
  auto waited = waiting.get();
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->exit_status(), 137u);
  EXPECT_EQ(StateOf("t1").status(), typespb::STOPPED);
  ASSERT_TRUE(service.Delete(WithId<taskpb::DeleteRequest>("t1")).ok());
}

TEST_F(TaskServiceTest, UnsupportedMethodsAnswerUnimplementedOverTtrpc) {
  UniqueFd a, b;
  ASSERT_TRUE(MakeSocketPair(&a, &b).ok());
  ttrpc::Server server;
  service.Register(&server);
  std::thread serving([&] { (void)server.ServeConnection(std::move(a)); });
  {
    ttrpc::Client client(std::move(b));
    auto paused = client.CallRaw(kTaskService, "Pause", "");
    ASSERT_FALSE(paused.ok());
    EXPECT_EQ(paused.error().code(), Code::kUnimplemented);
    EXPECT_EQ(paused.error().message(), "cocoon: Pause is not implemented yet");
    taskpb::ConnectRequest conn;
    conn.set_id("t1");
    auto connected = client.Call<taskpb::ConnectResponse>(kTaskService, "Connect", conn);
    ASSERT_TRUE(connected.ok());
    EXPECT_EQ(connected->shim_pid(), static_cast<uint32_t>(::getpid()));
    client.Close();
  }
  server.Shutdown();
  serving.join();
}

}  // namespace
}  // namespace cocoon::shim
