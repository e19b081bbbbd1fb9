// Test fixtures for the audit log: a real KeyService (keyd's code) in-process behind the
// KeyServiceClient interface, a temp directory, and a store that fails on demand.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "audit/log.h"
#include "audit/signer.h"
#include "keyd/key_service.h"
#include "store/audit_store.h"

namespace toani::audit::testing {

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "toani-audit-XXXXXX").string();
    path_ = ::mkdtemp(t.data()) ? t : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class InProcessKeyd : public keyd::KeyServiceClient {
 public:
  explicit InProcessKeyd(const std::string& state_dir) {
    keyd::KeydOptions o;
    o.state_dir = state_dir;
    o.dev = true;
    o.measurement = std::string(64, 'a');
    auto ks = keyd::KeyService::Open(o);
    TOANI_CHECK(ks.ok());
    ks_ = std::move(*ks);
  }
  StatusOr<nlohmann::json> Call(const nlohmann::json& req) override {
    nlohmann::json r = ks_->Handle(req);
    if (!r.value("ok", false))
      return Status::Unavailable(r["error"].value("message", "keyd error"));
    return r;
  }

 private:
  std::unique_ptr<keyd::KeyService> ks_;
};

// Passes through to a real store; fails every AppendBatch while fail_appends is set.
class FlakyStore : public store::AuditStore {
 public:
  explicit FlakyStore(std::unique_ptr<store::AuditStore> s) : s_(std::move(s)) {}
  std::atomic<bool> fail_appends{false};
  std::atomic<int> fail_every{0};      // when > 0, every fail_every-th write fails
  std::atomic<int> write_delay_ms{0};  // a slow disk, so batches queue up behind a write
  std::atomic<int> writes{0};
  Status AppendBatch(const std::vector<store::AuditRow>& r,
                     const std::vector<store::AuditTileRow>& t) override {
    const int n = ++writes;
    if (write_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(write_delay_ms.load()));
    }
    if (fail_appends) return Status::Unavailable("injected: disk full");
    if (fail_every > 0 && n % fail_every == 0) return Status::Unavailable("injected: I/O error");
    return s_->AppendBatch(r, t);
  }
  StatusOr<std::vector<store::AuditRow>> ReadEntries(uint64_t a, uint64_t b) override {
    return s_->ReadEntries(a, b);
  }
  StatusOr<uint64_t> Size() override { return s_->Size(); }
  StatusOr<std::vector<store::AuditTileRow>> ReadTiles() override { return s_->ReadTiles(); }

 private:
  std::unique_ptr<store::AuditStore> s_;
};

}  // namespace toani::audit::testing
