#include "sandbox/sandbox_runner.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace toani {
namespace {

using std::chrono::milliseconds;

SandboxSpec ShellSpec() {
  SandboxSpec spec;
  spec.connector_path = "/usr/bin/sh";  // reads commands from stdin
  spec.wall_timeout = milliseconds(10000);
  spec.seccomp = SeccompProfile::kConnectorWithSubprocesses;  // sh forks its commands
  return spec;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(BuildBwrapArgvTest, HasTheIsolationFlags) {
  SandboxSpec spec = ShellSpec();
  spec.egress_socket_host_path = "/usr/bin/true";  // any existing path
  spec.ro_binds = {{"/usr/bin/env", "/run/toani/extra"}};
  auto argv = BuildBwrapArgv(BwrapOptions{}, spec);
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  const std::vector<std::string>& a = *argv;
  EXPECT_EQ(a.front(), "/usr/bin/bwrap");
  for (const char* flag : {"--seccomp", "--unshare-all", "--disable-userns", "--die-with-parent",
                           "--new-session", "--clearenv", "--remount-ro"}) {
    EXPECT_TRUE(Contains(a, flag)) << flag;
  }
  EXPECT_FALSE(Contains(a, "--share-net"));
  EXPECT_FALSE(Contains(a, "--bind"));  // everything from the host is read-only
  const auto cap = std::find(a.begin(), a.end(), "--cap-drop");
  ASSERT_NE(cap, a.end());
  EXPECT_EQ(*(cap + 1), "ALL");
  EXPECT_EQ(a[a.size() - 2], "--");
  EXPECT_EQ(a.back(), "/run/toani/connector");
  EXPECT_TRUE(Contains(a, "/run/toani/egress.sock"));
  EXPECT_TRUE(Contains(a, "/run/toani/extra"));
  const auto size = std::find(a.begin(), a.end(), "--size");
  ASSERT_NE(size, a.end());
  EXPECT_EQ(*(size + 1), std::to_string(16 << 20));
  EXPECT_EQ(*(size + 2), "--tmpfs");
}

TEST(BuildBwrapArgvTest, RejectsBadSpecs) {
  SandboxSpec spec = ShellSpec();
  spec.connector_path = "/does/not/exist";
  EXPECT_FALSE(BuildBwrapArgv(BwrapOptions{}, spec).ok());
  spec = ShellSpec();
  spec.connector_path = "relative/path";
  EXPECT_FALSE(BuildBwrapArgv(BwrapOptions{}, spec).ok());
  for (const char* bad :
       {"relative", "/", "/proc/x", "/dev/x", "/usr/lib/x", "/tmp/x", "/run/toani/connector",
        "/run/toani/egress.sock", "/a/../etc", "/a//b", "/a/", "/a/./b"}) {
    spec = ShellSpec();
    spec.ro_binds = {{"/usr/bin/env", bad}};
    EXPECT_FALSE(BuildBwrapArgv(BwrapOptions{}, spec).ok()) << bad;
  }
  spec = ShellSpec();
  spec.ro_binds = {{"/no/such/file", "/run/toani/x"}};
  EXPECT_FALSE(BuildBwrapArgv(BwrapOptions{}, spec).ok());
}

TEST(BwrapRunnerTest, EchoesLinesAndReportsExitCode) {
  auto proc = MakeBwrapRunner()->Start(ShellSpec());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  SandboxProcess& p = **proc;
  ASSERT_TRUE(p.WriteLine("echo hello; echo oops >&2").ok());
  auto line = p.ReadLine(milliseconds(5000));
  ASSERT_TRUE(line.ok()) << line.status().ToString() << p.Stderr();
  EXPECT_EQ(*line, "hello");
  ASSERT_TRUE(p.WriteLine("exit 3").ok());
  auto code = p.Wait();
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 3);
  EXPECT_NE(p.Stderr().find("oops"), std::string::npos);
  EXPECT_FALSE(p.WriteLine("a\nb").ok());
}

TEST(BwrapRunnerTest, ReadLineTimesOut) {
  auto proc = MakeBwrapRunner()->Start(ShellSpec());
  ASSERT_TRUE(proc.ok());
  auto line = (*proc)->ReadLine(milliseconds(200));
  EXPECT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), StatusCode::kUnavailable);
  // Still usable afterwards.
  ASSERT_TRUE((*proc)->WriteLine("echo late").ok());
  auto late = (*proc)->ReadLine(milliseconds(5000));
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(*late, "late");
}

TEST(BwrapRunnerTest, StderrIsCapped) {
  SandboxSpec spec = ShellSpec();
  spec.max_stderr_bytes = 100;
  auto proc = MakeBwrapRunner()->Start(spec);
  ASSERT_TRUE(proc.ok());
  ASSERT_TRUE((*proc)
                  ->WriteLine("i=0; while [ $i -lt 2000 ]; do echo xxxxxxxxxx >&2; "
                              "i=$((i+1)); done; exit 0")
                  .ok());
  auto code = (*proc)->Wait();
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ((*proc)->Stderr().size(), 100u);
}

TEST(BwrapRunnerTest, StderrIsScrubbed) {
  auto proc = MakeBwrapRunner()->Start(ShellSpec());
  ASSERT_TRUE(proc.ok());
  const std::string token = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
  ASSERT_TRUE((*proc)->WriteLine("echo 'Authorization: Bearer " + token + "' >&2; exit 0").ok());
  ASSERT_TRUE((*proc)->Wait().ok());
  const std::string err = (*proc)->Stderr();
  EXPECT_EQ(err.find(token), std::string::npos) << err;
  EXPECT_NE(err.find("REDACTED"), std::string::npos) << err;
}

std::vector<pid_t> Descendants(pid_t root) {
  std::vector<pid_t> out, todo = {root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    std::ifstream in("/proc/" + std::to_string(p) + "/task/" + std::to_string(p) + "/children");
    pid_t c;
    while (in >> c) {
      out.push_back(c);
      todo.push_back(c);
    }
  }
  return out;
}

bool Alive(pid_t p) {
  std::ifstream in("/proc/" + std::to_string(p) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.empty()) return false;
  const size_t close = s.rfind(')');
  return close != std::string::npos && s.size() > close + 2 && s[close + 2] != 'Z';
}

TEST(BwrapRunnerTest, WallTimeoutKillsTheWholeSandbox) {
  SandboxSpec spec = ShellSpec();
  spec.wall_timeout = milliseconds(1500);
  auto proc = MakeBwrapRunner()->Start(spec);
  ASSERT_TRUE(proc.ok());
  // A background child in the sandbox, in its own process group and session.
  ASSERT_TRUE((*proc)->WriteLine("setsid sleep 60 & echo started").ok());
  ASSERT_TRUE((*proc)->ReadLine(milliseconds(5000)).ok());
  const std::vector<pid_t> inside = Descendants((*proc)->pid());
  ASSERT_GE(inside.size(), 2u);  // bwrap's pid-1, sh, sleep
  const auto t0 = std::chrono::steady_clock::now();
  auto code = (*proc)->Wait();
  EXPECT_FALSE(code.ok());
  EXPECT_EQ(code.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000));
  // The pid namespace dies with bwrap: poll (with a deadline) until all are gone.
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(5000);
  for (pid_t p : inside) {
    while (Alive(p) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_FALSE(Alive(p)) << "pid " << p << " survived";
  }
}

TEST(BwrapRunnerTest, KillThenWaitReportsSignal) {
  auto proc = MakeBwrapRunner()->Start(ShellSpec());
  ASSERT_TRUE(proc.ok());
  ASSERT_TRUE((*proc)->Kill().ok());
  auto code = (*proc)->Wait();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 128 + SIGKILL);
  EXPECT_TRUE((*proc)->Kill().ok());  // idempotent after reaping
}

TEST(BwrapRunnerTest, DestructorKillsRunningSandbox) {
  pid_t pid = 0;
  {
    auto proc = MakeBwrapRunner()->Start(ShellSpec());
    ASSERT_TRUE(proc.ok());
    pid = (*proc)->pid();
  }
  EXPECT_FALSE(Alive(pid));
}

TEST(BwrapRunnerTest, MissingBwrapFailsCleanly) {
  auto proc = MakeBwrapRunner("/no/such/bwrap")->Start(ShellSpec());
  ASSERT_TRUE(proc.ok());
  auto code = (*proc)->Wait();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 127);
}

}  // namespace
}  // namespace toani
