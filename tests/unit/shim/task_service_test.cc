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
  Result<uint32_t> StartExec(const taskpb::ExecProcessRequest& req) override {
    if (fail_exec) return Error(Code::kInternal, "exec failed");
    exec_spec = req.spec().value();
    return 4242u;
  }
  Result<uint32_t> Wait(const std::string&, const std::string& exec_id) override {
    return exec_id.empty() ? exit_future.get() : exec_exit_future.get();
  }
  Status Kill(const std::string&, const std::string& exec_id, uint32_t signal, bool) override {
    last_signal = signal;
    last_kill_exec = exec_id;
    return OkStatus();
  }
  Status CloseStdin(const std::string&, const std::string&) override { return OkStatus(); }
  Status ResizePty(const std::string&, const std::string&, uint32_t, uint32_t) override {
    return OkStatus();
  }
  Status DeleteExec(const std::string&, const std::string& exec_id) override {
    deleted_execs.push_back(exec_id);
    return OkStatus();
  }
  Status Delete(const std::string&) override {
    ++deletes;
    return OkStatus();
  }
  Status Pause(const std::string&) override { return OkStatus(); }
  Status Resume(const std::string&) override { return OkStatus(); }
  Status Update(const std::string&, const std::string& json) override {
    update_json = json;
    return OkStatus();
  }
  Result<cgroupspb::Metrics> Stats(const std::string&) override {
    cgroupspb::Metrics m;
    m.mutable_pids()->set_current(3);
    m.mutable_memory()->set_usage(1 << 20);
    return m;
  }
  Result<std::vector<uint32_t>> Pids(const std::string&) override {
    return std::vector<uint32_t>{1, 7};
  }

  bool fail_create = false;
  bool fail_exec = false;
  std::promise<uint32_t> exit_promise;
  std::shared_future<uint32_t> exit_future = exit_promise.get_future().share();
  std::promise<uint32_t> exec_exit_promise;
  std::shared_future<uint32_t> exec_exit_future = exec_exit_promise.get_future().share();
  uint32_t last_signal = 0;
  std::string last_kill_exec = "unset";
  std::string exec_spec;
  std::string update_json;
  std::vector<std::string> deleted_execs;
  int deletes = 0;
};

class RecordingSink : public EventSink {
 public:
  void Publish(const std::string& topic, const google::protobuf::Message& event) override {
    std::lock_guard<std::mutex> lock(mu);
    topics.push_back(topic);
    if (topic == "/tasks/exit") exit.CopyFrom(event);
    if (topic == "/tasks/exec-started") exec_started.CopyFrom(event);
  }
  std::vector<std::string> Topics() {
    std::lock_guard<std::mutex> lock(mu);
    return topics;
  }
  std::mutex mu;
  std::vector<std::string> topics;
  ::containerd::events::TaskExit exit;
  ::containerd::events::TaskExecStarted exec_started;
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
  template <typename Req>
  Req WithExec(const std::string& id, const std::string& exec_id) {
    Req r;
    r.set_id(id);
    r.set_exec_id(exec_id);
    return r;
  }
  taskpb::ExecProcessRequest ExecReq(const std::string& exec_id) {
    taskpb::ExecProcessRequest req;
    req.set_id("t1");
    req.set_exec_id(exec_id);
    req.set_stdout("/fifo/e-stdout");
    req.mutable_spec()->set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Process");
    req.mutable_spec()->set_value(R"({"args":["sh"]})");
    return req;
  }
  void StartT1() {
    CreateT1();
    ASSERT_TRUE(service.Start(WithId<taskpb::StartRequest>("t1")).ok());
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

TEST_F(TaskServiceTest, ExecLifecycleWithEvents) {
  // No exec before the container runs.
  CreateT1();
  EXPECT_EQ(service.Exec(ExecReq("e1")).error().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(service.Start(WithId<taskpb::StartRequest>("t1")).ok());

  ASSERT_TRUE(service.Exec(ExecReq("e1")).ok());
  auto dup = service.Exec(ExecReq("e1"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), Code::kAlreadyExists);
  EXPECT_EQ(dup.error().message(), "exec e1 of container t1 already exists");
  auto exec_state = service.State(WithExec<taskpb::StateRequest>("t1", "e1"));
  ASSERT_TRUE(exec_state.ok());
  EXPECT_EQ(exec_state->status(), typespb::CREATED);
  EXPECT_EQ(exec_state->id(), "e1");
  EXPECT_EQ(exec_state->exec_id(), "e1");
  EXPECT_EQ(exec_state->stdout(), "/fifo/e-stdout");

  auto waiting = std::async(
      std::launch::async, [&] { return service.Wait(WithExec<taskpb::WaitRequest>("t1", "e1")); });
  auto started = service.Start(WithExec<taskpb::StartRequest>("t1", "e1"));
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_EQ(backend.exec_spec, R"({"args":["sh"]})");
  EXPECT_EQ(service.State(WithExec<taskpb::StateRequest>("t1", "e1"))->status(), typespb::RUNNING);
  auto busy = service.Delete(WithExec<taskpb::DeleteRequest>("t1", "e1"));
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), Code::kFailedPrecondition);
  taskpb::KillRequest kill = WithExec<taskpb::KillRequest>("t1", "e1");
  kill.set_signal(SIGTERM);
  ASSERT_TRUE(service.Kill(kill).ok());
  EXPECT_EQ(backend.last_kill_exec, "e1");

  backend.exec_exit_promise.set_value(7);
  auto waited = waiting.get();
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->exit_status(), 7u);
  EXPECT_EQ(sink.exit.container_id(), "t1");
  EXPECT_EQ(sink.exit.id(), "e1");
  EXPECT_EQ(sink.exit.exit_status(), 7u);
  EXPECT_EQ(sink.exec_started.exec_id(), "e1");
  EXPECT_EQ(service.Kill(kill).error().code(), Code::kNotFound);
  // The container's init is untouched by its exec's exit.
  EXPECT_EQ(StateOf("t1").status(), typespb::RUNNING);

  auto deleted = service.Delete(WithExec<taskpb::DeleteRequest>("t1", "e1"));
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->exit_status(), 7u);
  EXPECT_EQ(backend.deleted_execs, std::vector<std::string>{"e1"});
  EXPECT_EQ(service.State(WithExec<taskpb::StateRequest>("t1", "e1")).error().code(),
            Code::kNotFound);
  // The id is free again once deleted.
  ASSERT_TRUE(service.Exec(ExecReq("e1")).ok());
  EXPECT_EQ(sink.Topics(),
            (std::vector<std::string>{"/tasks/create", "/tasks/start", "/tasks/exec-added",
                                      "/tasks/exec-started", "/tasks/exit", "/tasks/exec-added"}));

  backend.exit_promise.set_value(0);
  auto init_waited = service.Wait(WithId<taskpb::WaitRequest>("t1"));
  ASSERT_TRUE(init_waited.ok());
  // Deleting the container takes its never-started exec with it.
  ASSERT_TRUE(service.Delete(WithId<taskpb::DeleteRequest>("t1")).ok());
  EXPECT_EQ(service.size(), 0u);
}

TEST_F(TaskServiceTest, ExecBadInput) {
  StartT1();
  taskpb::ExecProcessRequest no_id = ExecReq("");
  EXPECT_EQ(service.Exec(no_id).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(service.Exec(ExecReq("../x")).error().code(), Code::kInvalidArgument);
  taskpb::ExecProcessRequest no_spec = ExecReq("e1");
  no_spec.clear_spec();
  EXPECT_EQ(service.Exec(no_spec).error().code(), Code::kInvalidArgument);
  taskpb::ExecProcessRequest logfile = ExecReq("e1");
  logfile.set_stdout("binary:///usr/bin/logger");
  EXPECT_EQ(service.Exec(logfile).error().code(), Code::kInvalidArgument);
  taskpb::ExecProcessRequest other = ExecReq("e1");
  other.set_id("nope");
  EXPECT_EQ(service.Exec(other).error().code(), Code::kNotFound);
  EXPECT_EQ(service.Start(WithExec<taskpb::StartRequest>("t1", "zz")).error().code(),
            Code::kNotFound);

  // A failed exec start leaves it created; a created exec killed reads as killed.
  backend.fail_exec = true;
  ASSERT_TRUE(service.Exec(ExecReq("e2")).ok());
  auto failed = service.Start(WithExec<taskpb::StartRequest>("t1", "e2"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), "exec failed");
  EXPECT_EQ(service.State(WithExec<taskpb::StateRequest>("t1", "e2"))->status(), typespb::CREATED);
  taskpb::KillRequest kill = WithExec<taskpb::KillRequest>("t1", "e2");
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(service.Kill(kill).ok());
  EXPECT_EQ(backend.last_kill_exec, "unset");  // nothing ran in the guest to signal
  EXPECT_EQ(service.Wait(WithExec<taskpb::WaitRequest>("t1", "e2"))->exit_status(), 137u);
  backend.exit_promise.set_value(0);
}

TEST_F(TaskServiceTest, PauseAndResume) {
  CreateT1();
  auto early = service.Pause(WithId<taskpb::PauseRequest>("t1"));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(service.Start(WithId<taskpb::StartRequest>("t1")).ok());
  EXPECT_EQ(service.Resume(WithId<taskpb::ResumeRequest>("t1")).error().code(),
            Code::kFailedPrecondition);
  ASSERT_TRUE(service.Pause(WithId<taskpb::PauseRequest>("t1")).ok());
  EXPECT_EQ(StateOf("t1").status(), typespb::PAUSED);
  EXPECT_EQ(service.Pause(WithId<taskpb::PauseRequest>("t1")).error().code(),
            Code::kFailedPrecondition);
  ASSERT_TRUE(service.Resume(WithId<taskpb::ResumeRequest>("t1")).ok());
  EXPECT_EQ(StateOf("t1").status(), typespb::RUNNING);
  EXPECT_EQ(service.Pause(WithId<taskpb::PauseRequest>("nope")).error().code(), Code::kNotFound);
  EXPECT_EQ(sink.Topics(), (std::vector<std::string>{"/tasks/create", "/tasks/start",
                                                     "/tasks/paused", "/tasks/resumed"}));
  backend.exit_promise.set_value(0);
}

TEST_F(TaskServiceTest, StatsUpdatePidsAndOom) {
  StartT1();
  auto stats = service.Stats(WithId<taskpb::StatsRequest>("t1"));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stats().type_url(), "io.containerd.cgroups.v2.Metrics");
  cgroupspb::Metrics m;
  ASSERT_TRUE(m.ParseFromString(stats->stats().value()));
  EXPECT_EQ(m.pids().current(), 3u);
  EXPECT_EQ(m.memory().usage(), 1u << 20);
  EXPECT_EQ(service.Stats(WithId<taskpb::StatsRequest>("nope")).error().code(), Code::kNotFound);

  taskpb::UpdateTaskRequest update = WithId<taskpb::UpdateTaskRequest>("t1");
  EXPECT_EQ(service.Update(update).error().code(), Code::kInvalidArgument);
  update.mutable_resources()->set_value(R"({"memory":{"limit":67108864}})");
  ASSERT_TRUE(service.Update(update).ok());
  EXPECT_EQ(backend.update_json, R"({"memory":{"limit":67108864}})");

  auto pids = service.Pids(WithId<taskpb::PidsRequest>("t1"));
  ASSERT_TRUE(pids.ok());
  ASSERT_EQ(pids->processes_size(), 2);
  EXPECT_EQ(pids->processes(1).pid(), 7u);

  service.ReportOom("nope");  // unknown: nothing published
  service.ReportOom("t1");
  EXPECT_EQ(sink.Topics().back(), "/tasks/oom");
  EXPECT_EQ(sink.Topics().size(), 3u);

  backend.exit_promise.set_value(0);
  ASSERT_TRUE(service.Wait(WithId<taskpb::WaitRequest>("t1")).ok());
  EXPECT_EQ(service.Update(update).error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(service.Stats(WithId<taskpb::StatsRequest>("t1")).error().code(), Code::kNotFound);
}

// OCI hooks of the bundle's config.json run on the host with the state on stdin: prestart and
// createRuntime in Create (pid = the backend's), poststart in Start, poststop in Delete.
class TaskServiceHooksTest : public TaskServiceTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shim-hooks-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveTree(dir_); }
  void WriteSpec(const nlohmann::json& hooks) {
    nlohmann::json spec = {
        {"ociVersion", "1.0.2"}, {"annotations", {{"io.example/a", "b"}}}, {"hooks", hooks}};
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/config.json", spec.dump()).ok());
  }
  nlohmann::json Recorder(const std::string& name) {
    return {{"path", "/bin/sh"}, {"args", {"sh", "-c", "cat > " + dir_ + "/" + name}}};
  }
  Result<taskpb::CreateTaskResponse> Create() {
    taskpb::CreateTaskRequest req;
    req.set_id("t1");
    req.set_bundle(dir_);
    return service.Create(req);
  }
  nlohmann::json StateFile(const std::string& name) {
    auto text = ReadFile(dir_ + "/" + name);
    return text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  }
  std::string dir_;
};

TEST_F(TaskServiceHooksTest, RunAroundTheLifecycleWithTheirState) {
  WriteSpec({{"prestart", {Recorder("prestart")}},
             {"createRuntime", {Recorder("createRuntime")}},
             {"poststart", {Recorder("poststart")}},
             {"poststop", {Recorder("poststop")}},
             {"startContainer", {Recorder("startContainer")}}});
  ASSERT_TRUE(Create().ok());
  for (const char* kind : {"prestart", "createRuntime"}) {
    nlohmann::json st = StateFile(kind);
    EXPECT_EQ(st["id"], "t1") << kind;
    EXPECT_EQ(st["status"], "created") << kind;
    EXPECT_EQ(st["pid"], 4242) << kind;
    EXPECT_EQ(st["bundle"], dir_) << kind;
    EXPECT_EQ(st["annotations"]["io.example/a"], "b") << kind;
  }
  EXPECT_FALSE(PathExists(dir_ + "/poststart"));
  ASSERT_TRUE(service.Start(WithId<taskpb::StartRequest>("t1")).ok());
  EXPECT_EQ(StateFile("poststart")["status"], "running");
  backend.exit_promise.set_value(0);
  ASSERT_TRUE(service.Wait(WithId<taskpb::WaitRequest>("t1")).ok());
  ASSERT_TRUE(service.Delete(WithId<taskpb::DeleteRequest>("t1")).ok());
  EXPECT_EQ(StateFile("poststop")["status"], "stopped");
  // It would have to run inside the VM: skipped.
  EXPECT_FALSE(PathExists(dir_ + "/startContainer"));
}

TEST_F(TaskServiceHooksTest, FailingPrestartUndoesTheCreate) {
  WriteSpec(
      {{"prestart", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo nope >&2; exit 4"}}}}}});
  auto created = Create();
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(created.error().message().find("prestart hook 0"), std::string::npos)
      << created.error().message();
  EXPECT_NE(created.error().message().find("nope"), std::string::npos);
  EXPECT_EQ(backend.deletes, 1);  // the VM side was released
  auto state = service.State(WithId<taskpb::StateRequest>("t1"));
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().code(), Code::kNotFound);
}

TEST_F(TaskServiceHooksTest, MalformedHooksFailBeforeTheBackendIsAsked) {
  WriteSpec({{"poststop", {{{"path", "relative"}}}}});
  backend.fail_create = true;  // would say "boot failed" if it were reached
  auto created = Create();
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), Code::kInvalidArgument);
  EXPECT_NE(created.error().message().find("hooks.poststop[0].path"), std::string::npos)
      << created.error().message();
}

TEST_F(TaskServiceTest, CheckpointAnswersUnimplementedOverTtrpc) {
  UniqueFd a, b;
  ASSERT_TRUE(MakeSocketPair(&a, &b).ok());
  ttrpc::Server server;
  service.Register(&server);
  std::thread serving([&] { (void)server.ServeConnection(std::move(a)); });
  {
    ttrpc::Client client(std::move(b));
    auto checkpoint = client.CallRaw(kTaskService, "Checkpoint", "");
    ASSERT_FALSE(checkpoint.ok());
    EXPECT_EQ(checkpoint.error().code(), Code::kUnimplemented);
    EXPECT_EQ(checkpoint.error().message(),
              "cocoon: Checkpoint is not implemented: a VM sandbox cannot be checkpointed yet");
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
