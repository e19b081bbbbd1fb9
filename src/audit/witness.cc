#include "audit/witness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/encoding.h"
#include "common/log.h"

namespace toani::audit {
namespace {

Status WriteDurably(const std::string& dir, const std::string& name, const std::string& content) {
  const std::string tmp = dir + "/." + name + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Unavailable("witness: cannot write " + tmp);
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) {
    return Status::Unavailable("witness: cannot write " + dir + "/" + name);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

class DirectorySink final : public WitnessSink {
 public:
  explicit DirectorySink(std::string dir) : dir_(std::move(dir)) {}
  std::string name() const override { return "dir:" + dir_; }
  Status Publish(const std::string& note, uint64_t size, AuditLog&) override {
    ::mkdir(dir_.c_str(), 0700);
    TOANI_RETURN_IF_ERROR(WriteDurably(dir_, std::to_string(size) + ".checkpoint", note));
    return WriteDurably(dir_, "checkpoint", note);
  }

 private:
  std::string dir_;
};

class HttpWitnessSink final : public WitnessSink {
 public:
  HttpWitnessSink(std::string url, ClientTls tls, WitnessPost post)
      : url_(std::move(url)), tls_(std::move(tls)), post_(std::move(post)) {
    if (!post_) {
      post_ = [this](const std::string& u, const std::string& body) {
        return HttpsCall("POST", u, body, "text/plain; charset=utf-8", tls_,
                         std::chrono::seconds(10));
      };
    }
  }
  std::string name() const override { return "http:" + url_; }

  Status Publish(const std::string& note, uint64_t size, AuditLog& log) override {
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::vector<Hash> proof;
      if (old_size_ > 0 && old_size_ < size) {
        TOANI_ASSIGN_OR_RETURN(proof, log.ConsistencyProof(old_size_, size));
      }
      if (old_size_ > size)
        return Status::FailedPrecondition("witness " + url_ +
                                          " has a larger checkpoint than the log");
      TOANI_ASSIGN_OR_RETURN(ClientResponse resp, post_(url_ + "/add-checkpoint",
                                                        AddCheckpointBody(old_size_, proof, note)));
      if (resp.status == 200) {
        old_size_ = size;
        return Status::Ok();
      }
      if (resp.status == 409) {  // the witness knows another size: start from it
        uint64_t theirs = 0;
        std::string_view b = resp.body;
        while (!b.empty() && b.back() == '\n') b.remove_suffix(1);
        auto [p, ec] = std::from_chars(b.data(), b.data() + b.size(), theirs);
        if (ec != std::errc() || p != b.data() + b.size())
          return Status::Unavailable("witness: bad 409 body");
        old_size_ = theirs;
        continue;
      }
      return Status::Unavailable("witness " + url_ + " answered " + std::to_string(resp.status) +
                                 ": " + resp.body.substr(0, 200));
    }
    return Status::Unavailable("witness " + url_ + ": size conflict persists");
  }

 private:
  std::string url_;
  ClientTls tls_;
  WitnessPost post_;
  uint64_t old_size_ = 0;
};

}  // namespace

std::unique_ptr<WitnessSink> NewDirectorySink(std::string dir) {
  return std::make_unique<DirectorySink>(std::move(dir));
}

std::unique_ptr<WitnessSink> NewHttpWitnessSink(std::string url, ClientTls tls, WitnessPost post) {
  return std::make_unique<HttpWitnessSink>(std::move(url), std::move(tls), std::move(post));
}

std::string AddCheckpointBody(uint64_t old_size, const std::vector<Hash>& proof,
                              const std::string& note) {
  std::string body = "old " + std::to_string(old_size) + "\n";
  for (const Hash& h : proof)
    body += Base64Encode(std::span<const uint8_t>(h.data(), h.size())) + "\n";
  body += "\n";
  body += note;
  return body;
}

Status CheckAgainstPublished(const std::string& dir, const AuditLog& log) {
  std::ifstream in(dir + "/checkpoint", std::ios::binary);
  if (!in) return Status::Ok();  // nothing published yet
  std::stringstream ss;
  ss << in.rdbuf();
  auto cp = VerifyCheckpoint(ss.str(), log.key());
  if (!cp.ok()) {
    return Status::FailedPrecondition("the last published checkpoint (" + dir +
                                      "/checkpoint) does not verify: " + cp.status().message());
  }
  if (cp->size > log.size()) {
    return Status::FailedPrecondition("audit log rolled back: it has " +
                                      std::to_string(log.size()) + " entries but checkpoint " +
                                      std::to_string(cp->size) + " was published");
  }
  auto root = log.RootAt(cp->size);
  if (!root.ok() || *root != cp->root) {
    return Status::FailedPrecondition("audit log forked: its root at size " +
                                      std::to_string(cp->size) +
                                      " differs from the published checkpoint");
  }
  return Status::Ok();
}

WitnessPublisher::WitnessPublisher(AuditLog* log, std::vector<std::unique_ptr<WitnessSink>> sinks,
                                   std::chrono::milliseconds interval)
    : log_(log), sinks_(std::move(sinks)), interval_(interval) {
  thread_ = std::thread([this] { Run(); });
}

WitnessPublisher::~WitnessPublisher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status WitnessPublisher::PublishNow() {
  std::lock_guard<std::mutex> pl(publish_mu_);
  if (log_->Fault()) return Status::FailedPrecondition("audit log is faulted; not publishing");
  const uint64_t size = log_->size();
  if (size == published_size_) return Status::Ok();
  TOANI_ASSIGN_OR_RETURN(std::string note, log_->Checkpoint());
  auto cp = VerifyCheckpoint(note, log_->key());
  if (!cp.ok()) return cp.status();
  Status all = Status::Ok();
  for (auto& s : sinks_) {
    Status st = s->Publish(note, cp->size, *log_);
    if (!st.ok()) {
      Log(LogLevel::kWarn, "audit", "witness_publish_failed",
          {{"sink", s->name()}, {"error", st.message()}});
      all = st;
    }
  }
  if (all.ok()) published_size_ = cp->size;
  return all;
}

void WitnessPublisher::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    (void)PublishNow();
    l.lock();
    cv_.wait_for(l, interval_, [this] { return stop_; });
  }
}

}  // namespace toani::audit
