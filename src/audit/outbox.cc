#include "audit/outbox.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/encoding.h"
#include "common/log.h"

namespace toani::audit {
namespace fs = std::filesystem;

StatusOr<std::unique_ptr<Outbox>> Outbox::Open(std::string dir, AuditLog* log,
                                               std::chrono::milliseconds retry) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Unavailable("outbox: cannot create " + dir);
  std::unique_ptr<Outbox> o(new Outbox(std::move(dir), log, retry));
  o->DrainOnce();
  o->thread_ = std::thread([p = o.get()] { p->Run(); });
  return o;
}

Outbox::~Outbox() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Outbox::Put(nlohmann::json fields) {
  uint8_t id[16];
  randombytes_buf(id, sizeof id);
  const std::string oid = HexEncode(id);
  fields["outbox_id"] = oid;
  const std::string body = fields.dump();
  const std::string tmp = dir_ + "/." + oid + ".tmp";
  const std::string path = dir_ + "/" + oid + ".json";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("outbox: cannot write " + tmp);
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Unavailable("outbox: cannot store entry");
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    if (dfd >= 0) ::close(dfd);
    return Status::Unavailable("outbox: cannot sync directory");
  }
  ::close(dfd);
  Log(LogLevel::kWarn, "audit", "outbox_stored",
      {{"outbox_id", oid}, {"type", fields.value("type", "")}});
  cv_.notify_all();
  return Status::Ok();
}

size_t Outbox::Pending() const {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() == ".json") ++n;
  }
  return n;
}

size_t Outbox::DrainOnce() {
  std::lock_guard<std::mutex> dl(drain_mu_);
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  size_t remaining = files.size();
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (!j.is_object()) {
      Log(LogLevel::kError, "audit", "outbox_corrupt", {{"file", f.string()}});
      continue;  // kept for an operator to look at
    }
    auto r = log_->Append(j);
    if (!r.ok()) break;  // the log is still down: keep the order, retry later
    fs::remove(f, ec);
    --remaining;
    Log(LogLevel::kInfo, "audit", "outbox_drained",
        {{"outbox_id", j.value("outbox_id", "")}, {"index", r->index}});
  }
  return remaining;
}

void Outbox::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    cv_.wait_for(l, retry_, [this] { return stop_; });
    if (stop_) break;
    l.unlock();
    if (Pending() > 0) DrainOnce();
    l.lock();
  }
}

}  // namespace toani::audit
