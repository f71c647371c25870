#include "harness.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "common/io.h"

namespace cocoon::itest {

std::string ReadAllFd(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::vector<pid_t> QemuPidsFor(const std::string& id) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    auto cmd = ReadFile(std::string("/proc/") + e->d_name + "/cmdline", 1 << 20);
    if (!cmd.ok()) continue;
    std::string line = *cmd;
    for (char& c : line) {
      if (c == '\0') c = ' ';
    }
    if (line.find("qemu-system") != std::string::npos &&
        line.find("cocoon-" + id + " ") != std::string::npos) {
      pids.push_back(pid);
    }
  }
  ::closedir(proc);
  return pids;
}

void CocoonTest::SetUp() {
  ASSERT_EQ(::geteuid(), 0u) << "integration tests need root";
  char tmpl[] = "/tmp/cocoon-itest-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  work_ = tmpl;
  root_ = work_ + "/state";
  // The one-time TCG notice would otherwise open the first run's stderr; TcgNoticeOnce tests it.
  ASSERT_TRUE(MakeDirs(root_, 0711).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/.tcg-notice", "").ok());
}

void CocoonTest::TearDown() {
  for (const auto& id : ids_) ExpectNoLeftovers(id);
  ASSERT_TRUE(RemoveTree(work_).ok());
}

std::string CocoonTest::NewId() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string id = std::string("it-") + info->name() + "-" + std::to_string(::getpid()) + "-" +
                   std::to_string(ids_.size());
  if (id.size() > 60) id = id.substr(id.size() - 60);
  ids_.push_back(id);
  return id;
}

std::string CocoonTest::MakeBundle(const std::vector<std::string>& args, bool tty) {
  std::string dir =
      work_ + "/bundle" + std::to_string(ids_.size()) + "-" + std::to_string(std::rand());
  std::vector<std::string> argv = {COCOON_SOURCE_DIR "/scripts/make-bundle.sh", dir};
  if (tty) argv.push_back("--tty");
  argv.push_back("--");
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions opts;
  opts.argv = argv;
  std::vector<std::string> env = {"COCOON_BIN=" COCOON_BIN, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  opts.env = env;
  auto r = ChildProcess::Spawn(opts);
  EXPECT_TRUE(r.ok()) << r.error().message();
  if (!r.ok()) return dir;
  auto st = r->Wait();
  EXPECT_TRUE(st.ok() && ExitCodeFromWaitStatus(*st) == 0) << "make-bundle.sh failed";
  return dir;
}

void CocoonTest::EditSpec(const std::string& bundle,
                          const std::function<void(nlohmann::json&)>& edit) {
  auto text = ReadFile(bundle + "/config.json");
  ASSERT_TRUE(text.ok()) << text.error().message();
  nlohmann::json spec = nlohmann::json::parse(*text);
  edit(spec);
  ASSERT_TRUE(WriteFileAtomic(bundle + "/config.json", spec.dump()).ok());
}

Outcome CocoonTest::Cocoon(const std::vector<std::string>& args, const std::string& input,
                           const std::vector<std::string>& extra_env) {
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  EXPECT_TRUE(MakePipe(&in_r, &in_w).ok());
  EXPECT_TRUE(MakePipe(&out_r, &out_w).ok());
  EXPECT_TRUE(MakePipe(&err_r, &err_w).ok());
  SpawnOptions opts;
  opts.argv = {COCOON_BIN, "--root", root_};
  opts.argv.insert(opts.argv.end(), args.begin(), args.end());
  if (!extra_env.empty()) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    opts.env = env;
  }
  opts.fds = {{0, in_r.get()}, {1, out_w.get()}, {2, err_w.get()}};
  auto child = ChildProcess::Spawn(opts);
  Outcome o;
  if (!child.ok()) {
    ADD_FAILURE() << child.error().message();
    return o;
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  std::thread writer([&] {
    (void)WriteAll(in_w.get(), input);
    in_w.reset();
  });
  std::thread err_reader([&] { o.err = ReadAllFd(err_r.get()); });
  o.out = ReadAllFd(out_r.get());
  err_reader.join();
  writer.join();
  auto st = child->Wait();
  o.exit_code = st.ok() ? ExitCodeFromWaitStatus(*st) : -1;
  return o;
}

ChildProcess CocoonTest::StartCocoon(const std::vector<std::string>& args, int* out_fd) {
  UniqueFd out_r, out_w;
  EXPECT_TRUE(MakePipe(&out_r, &out_w).ok());
  SpawnOptions opts;
  opts.argv = {COCOON_BIN, "--root", root_};
  opts.argv.insert(opts.argv.end(), args.begin(), args.end());
  opts.fds = {{1, out_w.get()}, {2, 2}};
  auto child = ChildProcess::Spawn(opts);
  EXPECT_TRUE(child.ok());
  *out_fd = out_r.release();
  return child.ok() ? std::move(*child) : ChildProcess();
}

void CocoonTest::ExpectNoLeftovers(const std::string& id) {
  // QEMU exits within moments of cocoon; allow it a short while to be reaped.
  for (int i = 0; i < 50 && !QemuPidsFor(id).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(QemuPidsFor(id).empty()) << "a QEMU process of " << id << " is still running";
  EXPECT_FALSE(PathExists(root_ + "/" + id)) << "state directory of " << id << " remains";
  auto mounts = ReadFile("/proc/self/mountinfo", 16 << 20);
  ASSERT_TRUE(mounts.ok());
  EXPECT_EQ(mounts->find(id), std::string::npos) << "a mount of " << id << " remains";
  auto all = ReadFile("/proc/1/mountinfo", 16 << 20);
  if (all.ok()) {
    EXPECT_EQ(all->find(id), std::string::npos) << "a host mount of " << id << " remains";
  }
}

}  // namespace cocoon::itest
