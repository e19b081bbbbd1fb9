#include "audit/witness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/encoding.h"
#include "common/log.h"
#include "crypto/hash.h"

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
  HttpWitnessSink(std::string url, ClientTls tls, WitnessPost post, std::string state_dir)
      : url_(std::move(url)),
        tls_(std::move(tls)),
        post_(std::move(post)),
        state_dir_(std::move(state_dir)) {
    if (!post_) {
      post_ = [this](const std::string& u, const std::string& body) {
        return HttpsCall("POST", u, body, "text/plain; charset=utf-8", tls_,
                         std::chrono::seconds(10));
      };
    }
  }
  std::string name() const override { return "http:" + url_; }

  Status Publish(const std::string& note, uint64_t size, AuditLog& log) override {
    // First submission since start: claim our own size. A witness that cosigned anything
    // else says so (409 with its size), which is how a rollback or fork shows.
    uint64_t old = old_size_.value_or(size);
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (old > size && log.Clustered() && log.CatchUp().ok() && log.size() >= old) {
        // Another node published a newer checkpoint of the shared log: not a rollback.
        old_size_ = old;
        return Status::Unavailable("witness " + url_ +
                                   " is ahead of this node's view; "
                                   "publishing the next checkpoint instead");
      }
      if (old > size) {
        return Status::FailedPrecondition("audit log rolled back: witness " + url_ +
                                          " cosigned a checkpoint of size " + std::to_string(old) +
                                          " but the log has " + std::to_string(size) + " entries");
      }
      std::vector<Hash> proof;
      if (old > 0 && old < size) {
        TOANI_ASSIGN_OR_RETURN(proof, log.ConsistencyProof(old, size));
      }
      TOANI_ASSIGN_OR_RETURN(ClientResponse resp,
                             post_(url_ + "/add-checkpoint", AddCheckpointBody(old, proof, note)));
      if (resp.status == 200) {
        old_size_ = size;
        if (!state_dir_.empty()) {
          ::mkdir(state_dir_.c_str(), 0700);
          TOANI_RETURN_IF_ERROR(WriteDurably(state_dir_, "cosignature", resp.body));
          TOANI_RETURN_IF_ERROR(WriteDurably(state_dir_, "checkpoint", note));
        }
        return Status::Ok();
      }
      if (resp.status == 409) {  // the witness cosigned another size (body: that size)
        uint64_t theirs = 0;
        std::string_view b = resp.body;
        if (!b.empty() && b.back() == '\n') b.remove_suffix(1);
        auto [p, ec] = std::from_chars(b.data(), b.data() + b.size(), theirs);
        if (ec != std::errc() || p != b.data() + b.size() || b.empty())
          return Status::Unavailable("witness " + url_ + ": bad 409 body");
        if (theirs == old) {
          // Our old size was its size, so the conflict is the root: another tree.
          return Status::FailedPrecondition("audit log forked: witness " + url_ +
                                            " cosigned a different tree of size " +
                                            std::to_string(theirs));
        }
        old = theirs;
        continue;
      }
      if (resp.status == 422) {
        return Status::FailedPrecondition("audit log forked: witness " + url_ +
                                          " refused the consistency proof from its size " +
                                          std::to_string(old) + " to " + std::to_string(size) +
                                          " (its tree of that size is not a prefix of this log)");
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
  std::string state_dir_;
  std::optional<uint64_t> old_size_;  // the size the witness last cosigned, once known
};

}  // namespace

std::unique_ptr<WitnessSink> NewDirectorySink(std::string dir) {
  return std::make_unique<DirectorySink>(std::move(dir));
}

std::unique_ptr<WitnessSink> NewHttpWitnessSink(std::string url, ClientTls tls, WitnessPost post,
                                                std::string state_dir) {
  return std::make_unique<HttpWitnessSink>(std::move(url), std::move(tls), std::move(post),
                                           std::move(state_dir));
}

std::string HttpWitnessStateDir(const std::string& base, const std::string& url) {
  return base + "/" + crypto::Sha256Hex(url).substr(0, 16);
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
    if (st.code() == StatusCode::kFailedPrecondition) {  // evidence of a rollback or fork
      Log(LogLevel::kError, "audit", "witness_check_failed",
          {{"sink", s->name()}, {"error", st.message()}});
      log_->SetFault(st.message());
      return st;
    }
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
