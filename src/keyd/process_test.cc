// Tests against the real toani-keyd executable: memory scan through /proc/PID/mem,
// seccomp and no_new_privs, SO_PEERCRED/socket checks, malformed frames, and the
// client's fail-closed restart when keyd dies, and pipelined calls from many threads.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "audit/sign_frame.h"
#include "common/encoding.h"
#include "keyd/client.h"
#include "keyd/keyd_test_util.h"
#include "keyd/protocol.h"
#include "keyd/seccomp.h"

namespace toani::keyd {
namespace {

using nlohmann::json;
using testing::Recipient;
using testing::SealTo;
using testing::TempDir;

std::string KeydPath() { return std::string(TOANI_BUILD_DIR) + "/bin/toani-keyd"; }

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

struct ScanResult {
  size_t bytes_read = 0;
  size_t regions_unreadable = 0;
  std::vector<bool> found;
};

// Reads every readable mapping of `pid` through /proc/PID/mem (as root can, even for
// a non-dumpable process) and reports which needles occur.
ScanResult ScanMemory(pid_t pid, const std::vector<std::string>& needles) {
  ScanResult r;
  r.found.assign(needles.size(), false);
  std::istringstream maps(ReadText("/proc/" + std::to_string(pid) + "/maps"));
  int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY);
  if (mem < 0) return r;
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r') continue;
    if (line.find("[vvar]") != std::string::npos) continue;
    std::string buf(hi - lo, '\0');
    ssize_t n = ::pread(mem, buf.data(), buf.size(), static_cast<off_t>(lo));
    if (n <= 0) {
      ++r.regions_unreadable;
      continue;
    }
    buf.resize(static_cast<size_t>(n));
    r.bytes_read += buf.size();
    for (size_t i = 0; i < needles.size(); ++i) {
      if (buf.find(needles[i]) != std::string::npos) r.found[i] = true;
    }
  }
  ::close(mem);
  return r;
}

TEST(KeydMemory, ProcMemShowsNeitherCredentialNorRootKey) {
  if (::geteuid() != 0) GTEST_SKIP() << "reading another process's memory needs root";
  TempDir d;
  auto p = KeydProcess::Spawn(KeydPath(), d.path.string(), /*dev=*/true);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto st = (*p)->Call({{"op", "status"}});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ((*st)["secret_memory"], "memfd_secret");
  const std::string intake = (*st)["intake_public_key"];
  uint8_t rnd[24];
  randombytes_buf(rnd, sizeof rnd);
  const std::string credential =
      "cred-" + Base64UrlEncode(std::span<const uint8_t>(rnd, sizeof rnd));
  auto imp = (*p)->Call({{"op", "credential.import"},
                         {"tenant", "dev"},
                         {"credential_id", "c1"},
                         {"version", 1},
                         {"sealed", SealTo(intake, credential)}});
  ASSERT_TRUE(imp.ok()) << imp.status().ToString();
  auto m = (*p)->Call(
      {{"op", "token.mint"},
       {"tenant", "dev"},
       {"agent", "a"},
       {"user", "u"},
       {"ttl_seconds", 60},
       {"claims",
        {{"policy_id", "p"}, {"action", "x"}, {"params_hash", "sha256:00"}, {"cred", {"c1"}}}}});
  ASSERT_TRUE(m.ok());
  Recipient r;
  auto rel = (*p)->Call({{"op", "credential.release"},
                         {"tenant", "dev"},
                         {"token", (*m)["token"]},
                         {"credential_id", "c1"},
                         {"version", 1},
                         {"blob", (*imp)["blob"]},
                         {"recipient_public_key", r.PublicB64()}});
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  ASSERT_EQ(r.Open((*rel)["sealed"]), credential);  // the release really happened

  const std::string l0 = ReadText((d.path / "dev-root.key").string());
  ASSERT_EQ(l0.size(), 32u);
  const std::string token = (*m)["token"];
  // Controls: values that are in keyd's ordinary memory must be found, or the scan is blind.
  ScanResult res = ScanMemory((*p)->pid(), {credential, l0, intake, token.substr(0, 40)});
  EXPECT_GT(res.bytes_read, 100000u);
  EXPECT_TRUE(res.found[2]) << "control: the intake public key should be visible";
  EXPECT_TRUE(res.found[3]) << "control: the token (a request field) should be visible";
  EXPECT_FALSE(res.found[0]) << "credential plaintext found in keyd's readable memory";
  EXPECT_FALSE(res.found[1]) << "root key L0 found in keyd's readable memory";
  EXPECT_GE(res.regions_unreadable, 1u) << "the memfd_secret arena should refuse /proc/PID/mem";
}

TEST(KeydHardening, SeccompNoNewPrivsAndNonDumpable) {
  TempDir d;
  auto p = KeydProcess::Spawn(KeydPath(), d.path.string(), true);
  ASSERT_TRUE(p.ok());
  std::string status = ReadText("/proc/" + std::to_string((*p)->pid()) + "/status");
  EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos) << status;
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos);
  // Non-dumpable: /proc/PID/environ and friends become root-owned.
  struct stat sb {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string((*p)->pid()) + "/environ").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_uid, 0u);
}

TEST(KeydHardening, FilterDeniesSocketsExecAndThreads) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!InstallKeydSeccompFilter().ok()) ::_exit(10);
    if (::socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM) ::_exit(11);
    if (::socket(AF_UNIX, SOCK_STREAM, 0) >= 0) ::_exit(12);
    const char* argv[] = {"/bin/true", nullptr};
    ::execve("/bin/true", const_cast<char* const*>(argv), nullptr);
    if (errno != EPERM) ::_exit(13);
    if (::fork() >= 0 || errno != EPERM) ::_exit(14);
    if (::getpid() <= 0) ::_exit(15);  // ordinary syscalls still work
    ::_exit(0);
  }
  int ws = 0;
  ASSERT_EQ(::waitpid(child, &ws, 0), child);
  ASSERT_TRUE(WIFEXITED(ws));
  EXPECT_EQ(WEXITSTATUS(ws), 0);
}

// Runs keyd with `fd3` as its fd 3 and returns its exit status.
int RunKeydWithFd(int fd3, const std::string& state_dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd3, 3);
    const char* argv[] = {"toani-keyd", "--dev", "--state-dir", state_dir.c_str(), nullptr};
    const char* envp[] = {nullptr};
    ::execve(KeydPath().c_str(), const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    ::_exit(127);
  }
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

TEST(KeydHardening, RefusesAnFd3ThatIsNotAUnixSocket) {
  TempDir d;
  int pfd[2];
  ASSERT_EQ(::pipe(pfd), 0);
  EXPECT_EQ(RunKeydWithFd(pfd[0], d.path.string()), 1);
  ::close(pfd[0]);
  ::close(pfd[1]);
}

TEST(KeydProtocol, MalformedFramesGetErrorRepliesNotCrashes) {
  TempDir d;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::thread keyd([&] { EXPECT_EQ(RunKeydWithFd(sv[1], d.path.string()), 1); });
  auto raw = [&](const std::string& body, uint32_t len) {
    uint8_t hdr[4] = {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
                      static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
    ASSERT_EQ(::write(sv[0], hdr, 4), 4);
    if (!body.empty()) {
      ASSERT_EQ(::write(sv[0], body.data(), body.size()), static_cast<ssize_t>(body.size()));
    }
  };
  for (std::string body : std::vector<std::string>{
           "not json", "[1,2,3]", "{\"op\":42}", "{\"op\":\"token.verify\",\"token\":[]}",
           "{\"op\":\"credential.release\",\"tenant\":\"dev\",\"token\":\"v4.local.\"}",
           std::string("{\"op\":\"status\"") + std::string(1, '\0') + "}"}) {
    raw(body, static_cast<uint32_t>(body.size()));
    auto reply = ReadFrame(sv[0]);
    ASSERT_TRUE(reply.ok()) << body;
    EXPECT_EQ((*reply)["ok"], false) << body;
  }
  ASSERT_TRUE(WriteFrame(sv[0], {{"op", "status"}}).ok());  // still alive
  auto alive = ReadFrame(sv[0]);
  ASSERT_TRUE(alive.ok());
  EXPECT_EQ((*alive)["ok"], true);
  raw("", (1u << 20) + 1);  // too large: an error reply, then keyd closes the stream
  auto last = ReadFrame(sv[0]);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ((*last)["error"]["code"], "payload-too-large");
  ::close(sv[0]);
  keyd.join();
  ::close(sv[1]);
}

// The buffered reader hands out whole frames however the bytes arrive: several in one
// write, one trickled a byte at a time, one of the largest size; a bad length is refused
// and a stream cut inside a frame is a lost connection, not a short frame.
TEST(KeydProtocol, FrameReaderTakesWholeFramesHoweverTheBytesArrive) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const std::string big(kMaxFrameBytes, 'b');
  std::thread writer([&] {
    EXPECT_TRUE(WriteRawFrames(sv[1], {"one", std::string("\x03two", 4), "three"}).ok());
    std::string slow;
    slow.append({0, 0, 0, 5});
    slow += "trick";
    for (char c : slow) {
      EXPECT_EQ(::write(sv[1], &c, 1), 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(WriteRawFrame(sv[1], big).ok());
    const uint8_t too_long[4] = {0x00, 0x10, 0x00, 0x01};  // 1 MiB + 1
    EXPECT_EQ(::write(sv[1], too_long, 4), 4);
  });
  FrameReader reader(sv[0]);
  EXPECT_FALSE(reader.HasFrame());
  auto one = reader.Next();
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, "one");
  // The writer sent three at once: the others are buffered, so no read is needed.
  EXPECT_TRUE(reader.HasFrame());
  EXPECT_EQ(*reader.Next(), std::string("\x03two", 4));
  EXPECT_EQ(*reader.Next(), "three");
  EXPECT_EQ(*reader.Next(), "trick");
  auto large = reader.Next();
  ASSERT_TRUE(large.ok());
  EXPECT_TRUE(*large == big);
  auto refused = reader.Next();
  EXPECT_EQ(refused.status().code(), StatusCode::kPayloadTooLarge);
  writer.join();
  ::close(sv[0]);
  ::close(sv[1]);

  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const uint8_t cut[6] = {0, 0, 0, 9, 'a', 'b'};  // 9 bytes announced, 2 sent
  ASSERT_EQ(::write(sv[1], cut, sizeof cut), 6);
  ::close(sv[1]);
  FrameReader cut_reader(sv[0]);
  EXPECT_FALSE(cut_reader.HasFrame());
  EXPECT_EQ(cut_reader.Next().status().code(), StatusCode::kUnavailable);
  ::close(sv[0]);
}

// keyd answers frames that arrive together in one write, but each in its place: a
// malformed frame among them gets its error reply in order and keyd reads on.
TEST(KeydProtocol, FramesSentTogetherAreAnsweredInOrder) {
  TempDir d;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread keyd([&] { EXPECT_EQ(RunKeydWithFd(sv[1], d.path.string()), 0); });
  std::vector<std::string> frames;
  for (int i = 0; i < 40; ++i) frames.push_back(i == 17 ? "not json" : R"({"op":"status"})");
  ASSERT_TRUE(WriteRawFrames(sv[0], frames).ok());
  FrameReader reader(sv[0]);
  for (int i = 0; i < 40; ++i) {
    auto reply = reader.Next();
    ASSERT_TRUE(reply.ok()) << i;
    auto j = json::parse(*reply);
    EXPECT_EQ(j["ok"], i != 17) << i << " " << *reply;
  }
  ASSERT_TRUE(WriteRawFrame(sv[0], R"({"op":"status"})").ok());  // still reading
  auto alive = reader.Next();
  ASSERT_TRUE(alive.ok());
  EXPECT_EQ(json::parse(*alive)["ok"], true);
  ::close(sv[0]);  // keyd sees the server go away and exits 0
  keyd.join();
  ::close(sv[1]);
}

TEST(KeydSupervision, DeathFailsTheRequestClosedAndNextCallRestarts) {
  TempDir d;
  auto p = KeydProcess::Spawn(KeydPath(), d.path.string(), true);
  ASSERT_TRUE(p.ok());
  pid_t first = (*p)->pid();
  ::kill(first, SIGSTOP);  // the request will be in flight when keyd dies
  std::thread killer([first] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::kill(first, SIGKILL);
  });
  auto r = (*p)->Call({{"op", "status"}});
  killer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*p)->pid(), -1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto again = (*p)->Call({{"op", "status"}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE((*p)->pid(), first);
  EXPECT_EQ((*again)["sealed"], false);  // dev keyd unseals itself from the key file
}

// Many threads call at once over the one socket (pipelined): each gets the reply to its
// own request — attestation evidence echoing its own nonce — and error replies (a nonce
// keyd refuses) reach the caller that sent the bad request, not a neighbour.
TEST(KeydPipelining, ConcurrentCallsEachGetTheirOwnReply) {
  TempDir d;
  auto p = KeydProcess::Spawn(KeydPath(), d.path.string(), true);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  constexpr int kThreads = 12, kCalls = 25;
  std::atomic<int> matched{0}, refused{0}, wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        if ((t + i) % 7 == 0) {  // too short a nonce: keyd answers with an error
          auto bad = (*p)->Call(
              {{"op", "attestation.evidence"}, {"nonce", Base64UrlEncode(AsBytes("short"))}});
          (!bad.ok() && bad.status().code() == StatusCode::kInvalidArgument ? refused : wrong)++;
          continue;
        }
        const std::string nonce = Base64UrlEncode(
            AsBytes("nonce-" + std::to_string(t) + "-" + std::to_string(i) + "-padding"));
        auto r = (*p)->Call({{"op", "attestation.evidence"}, {"nonce", nonce}});
        (r.ok() && (*r)["evidence"].value("nonce", "") == nonce ? matched : wrong)++;
      }
    });
  }
  for (auto& t : ts) t.join();
  int want_refused = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kCalls; ++i) want_refused += (t + i) % 7 == 0;
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(refused.load(), want_refused);
  EXPECT_EQ(matched.load(), kThreads * kCalls - want_refused);
}

// Frames far larger than the socket buffer cross whole, both ways, even while other
// threads' small frames are pipelined on the same socket (a frame is one writev that
// the kernel may split; nothing may interleave with its remainder).
TEST(KeydPipelining, LargeFramesCrossWholeBesideSmallOnes) {
  TempDir d;
  auto p = KeydProcess::Spawn(KeydPath(), d.path.string(), true);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::vector<audit::SignItem> items;
  for (int i = 0; i < 6; ++i) {
    items.push_back({"{\"index\":" + std::to_string(i) + ",\"pad\":\"" +
                         std::string(120 * 1024, static_cast<char>('a' + i)) +
                         "\",\"tenant\":\"dev\",\"time\":\"2026-11-22T00:00:00Z\",\"v\":2}",
                     std::nullopt});
  }
  const std::string frame = audit::EncodeSignBatchRequest(audit::Hash{}, items);
  ASSERT_GT(frame.size(), 700u * 1024);
  std::atomic<bool> stop{false};
  std::atomic<int> small_ok{0}, small_bad{0};
  std::thread small([&] {
    while (!stop.load()) ((*p)->Call({{"op", "status"}}).ok() ? small_ok : small_bad)++;
  });
  for (int round = 0; round < 3; ++round) {
    auto reply = (*p)->CallBinary(frame);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    auto entries = audit::DecodeSignBatchReply(*reply, items.size());
    ASSERT_TRUE(entries.ok()) << entries.status().ToString();
    for (size_t i = 0; i < entries->size(); ++i)
      EXPECT_NE((*entries)[i].find(std::string(120 * 1024, static_cast<char>('a' + i))),
                std::string::npos);
  }
  stop = true;
  small.join();
  EXPECT_GT(small_ok.load(), 0);
  EXPECT_EQ(small_bad.load(), 0);
}

// keyd dies with several requests in flight: every one of them fails closed
// (Unavailable, not retried), and the next call starts a new keyd.
TEST(KeydSupervision, DeathFailsEveryRequestInFlight) {
  TempDir d;
  auto p = KeydProcess::Spawn(KeydPath(), d.path.string(), true);
  ASSERT_TRUE(p.ok());
  pid_t first = (*p)->pid();
  ::kill(first, SIGSTOP);  // the requests queue up on the socket unanswered
  constexpr int kCallers = 8;
  std::atomic<int> unavailable{0}, other{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kCallers; ++i) {
    ts.emplace_back([&] {
      auto r = (*p)->Call({{"op", "status"}});
      (!r.ok() && r.status().code() == StatusCode::kUnavailable ? unavailable : other)++;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(first, SIGKILL);
  for (auto& t : ts) t.join();
  EXPECT_EQ(unavailable.load(), kCallers);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ((*p)->pid(), -1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto again = (*p)->Call({{"op", "status"}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE((*p)->pid(), first);
}

}  // namespace
}  // namespace toani::keyd
