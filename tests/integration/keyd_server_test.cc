// The key plane through the real server and CLI: a server without --dev starts
// sealed and answers only the key routes; `toani operator init/unseal` bring it up;
// the CLI refuses simulated attestation unless told to accept it; killing keyd in the
// middle of a request fails closed (503) and the server recovers with a new keyd.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "common/http_client.h"
#include "server_harness.h"

namespace toani::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Bin(const std::string& name) { return std::string(TOANI_BUILD_DIR) + "/bin/" + name; }

// Runs a command with the given stdin text; returns exit code and stdout+stderr.
int RunCmd(const std::string& cmd, const std::string& input, std::string* out) {
  fs::path in = fs::temp_directory_path() / ("toani-in-" + std::to_string(::getpid()));
  { std::ofstream(in) << input; }
  FILE* p = ::popen((cmd + " < " + in.string() + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  out->clear();
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = ::pclose(p);
  fs::remove(in);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class SealedServer {
 public:
  SealedServer() {
    char tmpl[] = "/tmp/toani-sealed-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    data_ = dir_ + "/data";
    pid_ = ::fork();
    if (pid_ == 0) {
      FILE* log = std::fopen((dir_ + "/server.log").c_str(), "w");
      ::dup2(fileno(log), 1);
      ::dup2(fileno(log), 2);
      std::string toani = Bin("toani");
      ::execl(toani.c_str(), toani.c_str(), "server", "--data", data_.c_str(), "--listen",
              "127.0.0.1:0", nullptr);
      ::_exit(127);
    }
  }
  ~SealedServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    fs::remove_all(dir_);
  }
  bool WaitForAddress() {
    for (int i = 0; i < 600; ++i) {
      auto j = json::parse(ReadFileOrEmpty(data_ + "/server.json"), nullptr, false);
      if (!j.is_discarded() && j.contains("address")) {
        address_ = j["address"];
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  ClientResponse Call(const std::string& method, const std::string& path,
                      const std::string& body = "") {
    ClientTls tls{data_ + "/pki/ca.pem", data_ + "/pki/admin.pem", data_ + "/pki/admin-key.pem"};
    auto r = HttpsCall(method, address_ + path, body, body.empty() ? "" : "application/json", tls);
    return r.ok() ? *r : ClientResponse{0, "", r.status().message()};
  }
  std::string Cli(const std::string& args) {
    return Bin("toani") + " --data " + data_ + " " + args;
  }
  std::string Log() { return ReadFileOrEmpty(dir_ + "/server.log"); }

 private:
  std::string dir_, data_, address_;
  pid_t pid_ = -1;
};

TEST(SealedServer, AnswersOnlyKeyRoutesUntilOperatorsUnseal) {
  SealedServer s;
  ASSERT_TRUE(s.WaitForAddress()) << s.Log();
  auto st = s.Call("GET", "/v1/sys/status");
  ASSERT_EQ(st.status, 200) << st.body;
  EXPECT_EQ(json::parse(st.body)["sealed"], true);
  EXPECT_EQ(json::parse(st.body)["initialized"], false);
  EXPECT_EQ(s.Call("GET", "/v1/credentials").status, 503);

  std::string out;
  // Simulated attestation is refused against a non-dev server unless accepted.
  EXPECT_NE(RunCmd(s.Cli("operator init --shares 3 --threshold 2"), "", &out), 0);
  EXPECT_NE(out.find("simulated"), std::string::npos) << out;
  ASSERT_EQ(RunCmd(s.Cli("operator init --shares 3 --threshold 2 --allow-simulated"), "", &out), 0)
      << out;
  std::vector<std::string> shares;
  std::regex re("share \\d+: (ts1\\.[A-Za-z0-9_-]+)");
  for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it)
    shares.push_back((*it)[1]);
  ASSERT_EQ(shares.size(), 3u) << out;

  ASSERT_EQ(RunCmd(s.Cli("operator unseal --allow-simulated " + shares[2]), "", &out), 0) << out;
  EXPECT_NE(out.find("sealed: 1/2"), std::string::npos) << out;
  EXPECT_EQ(s.Call("GET", "/v1/credentials").status, 503);
  // A repeated share is refused.
  EXPECT_NE(RunCmd(s.Cli("operator unseal --allow-simulated " + shares[2]), "", &out), 0);
  ASSERT_EQ(RunCmd(s.Cli("operator unseal --allow-simulated"), shares[0] + "\n", &out), 0) << out;
  EXPECT_NE(out.find("unsealed"), std::string::npos) << out;

  // The full server takes over the same address once keyd is unsealed.
  long code = 0;
  for (int i = 0; i < 300 && code != 200; ++i) {
    code = s.Call("GET", "/v1/credentials").status;
    if (code != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(code, 200) << s.Log();
  EXPECT_NE(RunCmd(s.Cli("credential add --name k"), "secret-value\n", &out), 0) << out;
  ASSERT_EQ(RunCmd(s.Cli("credential add --name k --allow-simulated"), "secret-value\n", &out), 0)
      << out;
  ASSERT_EQ(RunCmd(s.Cli("tenant rotate-key"), "", &out), 0) << out;
  EXPECT_NE(out.find("\"key_version\": 2"), std::string::npos) << out;
  auto list = s.Call("GET", "/v1/credentials");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body.find("secret-value"), std::string::npos);
}

pid_t FindChild(pid_t parent, const std::string& comm) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFileOrEmpty(e.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.find('(' + comm + ')') == std::string::npos) continue;
    pid_t ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) {
      return static_cast<pid_t>(std::stoi(name));
    }
  }
  return -1;
}

TEST(DevServer, KeydKilledMidRequestGives503AndRecovers) {
  ServerHarness h;
  ASSERT_TRUE(h.Start().ok());
  auto sj = json::parse(ReadFileOrEmpty(h.data_dir() + "/server.json"));
  pid_t keyd = FindChild(sj["pid"].get<pid_t>(), "toani-keyd");
  ASSERT_GT(keyd, 0);
  long code = 0;
  ASSERT_TRUE(h.CallJson("admin", "GET", "/v1/keyd", nullptr, &code).ok());
  ASSERT_EQ(code, 200);
  ::kill(keyd, SIGSTOP);  // the next request reaches keyd and waits for it
  std::thread killer([keyd] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(keyd, SIGKILL);
  });
  auto during = h.Call("admin", "GET", "/v1/keyd", "");
  killer.join();
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->status, 503) << during->body;
  EXPECT_EQ(during->content_type, "application/problem+json");
  EXPECT_NE(during->body.find("keyd"), std::string::npos) << during->body;
  // The server restarts keyd on a later request and answers again.
  code = 0;
  for (int i = 0; i < 100 && code != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)h.CallJson("admin", "GET", "/v1/keyd", nullptr, &code);
  }
  EXPECT_EQ(code, 200);
  pid_t again = FindChild(sj["pid"].get<pid_t>(), "toani-keyd");
  EXPECT_GT(again, 0);
  EXPECT_NE(again, keyd);
  EXPECT_EQ(h.Stop(), 0);
}

}  // namespace
}  // namespace toani::testing
