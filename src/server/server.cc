#include "server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "audit/log.h"
#include "common/encoding.h"
#include "common/log.h"
#include "keyd/client.h"
#include "server/api.h"
#include "server/approval_webhook.h"
#include "server/audit_plane.h"
#include "server/config.h"
#include "server/executor.h"
#include "server/https_server.h"
#include "server/key_routes.h"
#include "server/pki.h"
#include "store/pg_store.h"
#include "store/redis_replay_store.h"
#include "store/store.h"

namespace toani::server {
namespace {
std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
}  // namespace
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int Fail(const std::string& event, const Status& st) {
  Log(LogLevel::kError, "server", event, {{"error", st.message()}});
  std::fprintf(stderr, "toani server: %s\n", st.message().c_str());
  return 1;
}

Status WriteFileAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << content;
    if (!f) return Status::Unavailable("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Unavailable("cannot rename " + tmp);
  return Status::Ok();
}

// Scale-out: the audit verifier key (derived from L0) and the tenant's current token key id
// (from L1) must be the same on every node. The first node records them in the database;
// every later node must match (docs/operations.md, "Adding a node").
Status CheckClusterKeys(store::PgDatabase* pg, keyd::KeyServiceClient* keyd,
                        const std::string& tenant) {
  TOANI_ASSIGN_OR_RETURN(auto signer, audit::NewKeydAuditSigner(keyd));
  Status l0 = pg->ClaimClusterValue("audit_vkey", signer->vkey());
  if (!l0.ok()) {
    return Status::FailedPrecondition(
        "this node's keyd holds another root key (L0) than the cluster: unseal it with the "
        "cluster's Shamir shares after copying root.json and keyring.json from an existing "
        "node's DATA/keyd (docs/operations.md): " +
        l0.message());
  }
  // A throwaway token (1 s, never used) names the tenant key in its footer.
  TOANI_ASSIGN_OR_RETURN(json minted, keyd->Call({{"op", "token.mint"},
                                                  {"tenant", tenant},
                                                  {"agent", "cluster-key-check"},
                                                  {"user", "-"},
                                                  {"ttl_seconds", 1},
                                                  {"claims",
                                                   {{"policy_id", "-"},
                                                    {"action", "-"},
                                                    {"params_hash", "-"},
                                                    {"cred", json::array()}}}}));
  const std::string token = minted.value("token", "");
  const size_t dot = token.rfind('.');
  auto footer = Base64UrlDecodeStrict(dot == std::string::npos ? "" : token.substr(dot + 1));
  if (!footer.ok()) return Status::Internal("minted token has no footer");
  auto fj = json::parse(std::string(footer->begin(), footer->end()), nullptr, false);
  const std::string kid = fj.is_object() ? fj.value("kid", "") : "";
  if (kid.empty()) return Status::Internal("minted token names no key");
  Status l1 = pg->ClaimClusterValue("tenant_key/" + tenant, kid);
  if (!l1.ok()) {
    return Status::FailedPrecondition(
        "this node's keyd holds another key for tenant '" + tenant +
        "' than the cluster: copy keyring.json from an existing node's DATA/keyd before "
        "unsealing (docs/operations.md): " +
        l1.message());
  }
  return Status::Ok();
}

}  // namespace

int RunServer(const ServerOptions& opts) {
  if (opts.dev && opts.listen_host != "127.0.0.1" && opts.listen_host != "::1" &&
      opts.listen_host != "localhost") {
    return Fail("start_failed",
                Status::InvalidArgument("--dev listens on loopback only (127.0.0.1 or ::1)"));
  }
  SetMinLogLevel(opts.log_level == "debug"   ? LogLevel::kDebug
                 : opts.log_level == "warn"  ? LogLevel::kWarn
                 : opts.log_level == "error" ? LogLevel::kError
                                             : LogLevel::kInfo);
  // Block the shutdown signals before any thread starts, so sigwait gets them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  fs::create_directories(opts.data_dir, ec);
  ::chmod(opts.data_dir.c_str(), 0700);
  const std::string data = fs::absolute(opts.data_dir).string();
  // One server per data directory: a second one would write the same audit log with a
  // chain of its own (a fork), and consume the same pending executions. The lock is the
  // open file's, so it goes when this process does, however it ends.
  const int lock_fd = ::open((data + "/server.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const std::string other = ReadFileOrEmpty(data + "/server.lock");
    return Fail("start_failed", Status::FailedPrecondition(
                                    "another toani server is running with data directory " + data +
                                    (other.empty() ? std::string() : " (pid " + other + ")") +
                                    ": stop it first, or give this one its own --data"));
  }
  // The pid is only a hint for that message (the lock is what counts): errors are ignored.
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(lock_fd, 0) == 0) (void)!::pwrite(lock_fd, pid.data(), pid.size(), 0);
  const std::string tenant = "dev";
  auto pki = EnsureDevPki(data + "/pki", tenant);
  if (!pki.ok()) return Fail("pki_failed", pki.status());
  TlsServerConfig tls{opts.tls_cert.empty() ? pki->server_cert : opts.tls_cert,
                      opts.tls_key.empty() ? pki->server_key : opts.tls_key,
                      opts.client_ca.empty() ? pki->ca_cert : opts.client_ca,
                      /*require_client_cert=*/true};
  // Trust: the dev CA plus every tenant CA made by `toani pki init` (DATA/pki/tenants/*),
  // each with its CRL, re-read on change so `toani pki revoke` applies at once.
  std::vector<std::pair<std::string, std::string>> ca_sources;
  if (opts.client_ca.empty()) {
    ca_sources.push_back({pki->ca_cert, opts.crl.empty() ? data + "/pki/crl.pem" : opts.crl});
    std::string bundle;
    std::vector<fs::path> tenant_dirs;
    for (const auto& e : fs::directory_iterator(data + "/pki/tenants", ec))
      tenant_dirs.push_back(e.path());
    std::sort(tenant_dirs.begin(), tenant_dirs.end());
    for (const auto& t : tenant_dirs) {
      if (fs::exists(t / "ca.pem"))
        ca_sources.push_back({(t / "ca.pem").string(), (t / "crl.pem").string()});
    }
    for (const auto& [ca, crl] : ca_sources) {
      std::ifstream f(ca);
      bundle += std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      if (!bundle.empty() && bundle.back() != '\n') bundle += '\n';
    }
    Status w = WriteFileAtomic(data + "/pki/trust-bundle.pem", bundle);
    if (!w.ok()) return Fail("pki_failed", w);
    tls.client_ca_file = data + "/pki/trust-bundle.pem";
  } else {
    ca_sources.push_back({opts.client_ca, opts.crl});
  }
  auto revocations = std::make_shared<RevocationList>(ca_sources);
  tls.revoked = [revocations](const PeerIdentity& p) {
    return revocations->IsRevoked(p.issuer_sha256, p.serial_hex);
  };
  Log(LogLevel::kInfo, "server", "trust", {{"cas", ca_sources.size()}});
  // Stores: embedded SQLite, or PostgreSQL shared by every node (migrated at start).
  std::string db_path = data + "/toani.db";
  std::unique_ptr<store::PgDatabase> pg;
  std::unique_ptr<store::Store> sqlite_store;
  store::Store* store = nullptr;
  std::string node = opts.node_name;
  if (node.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    node = std::string(host) + "-" + std::to_string(::getpid());
  }
  if (store::IsPostgresUrl(opts.store)) {
    auto db = store::PgDatabase::Open(opts.store, node, SystemClock());
    if (!db.ok()) return Fail("store_failed", db.status());
    pg = std::move(*db);
    store = pg->store();
    Log(LogLevel::kInfo, "server", "store",
        {{"kind", "postgres"}, {"schema_version", pg->schema_version()}, {"node", node}});
  } else if (opts.store.empty() || opts.store == "sqlite" || opts.store == "embedded" ||
             opts.store.rfind("sqlite:", 0) == 0) {
    if (opts.store.rfind("sqlite:", 0) == 0) db_path = opts.store.substr(7);
    // One server per SQLite file as well (a --store path outside the data directory could
    // otherwise be shared): only this process writes it, which is also what lets the
    // policy plane tell from its own writes whether its parsed policies are current.
    const int db_lock = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (db_lock < 0) {
      return Fail("store_failed", Status::Unavailable("cannot open the SQLite store " + db_path +
                                                      ": " + std::strerror(errno)));
    }
    if (::flock(db_lock, LOCK_EX | LOCK_NB) != 0) {
      return Fail("store_failed", Status::FailedPrecondition(
                                      "another toani server is using the SQLite store " + db_path +
                                      ": stop it first, or give this one its "
                                      "own --store"));
    }
    auto s = store::OpenSqliteStore(db_path);
    if (!s.ok()) return Fail("store_failed", s.status());
    sqlite_store = std::move(*s);
    store = sqlite_store.get();
  } else {
    return Fail("store_failed",
                Status::InvalidArgument("store '" + opts.store +
                                        "' must be sqlite, sqlite:PATH or a postgres:// URL"));
  }
  StatusOr<std::unique_ptr<store::ReplayStore>> replay = Status::Internal("unset");
  store::ReplayStore* replay_store = nullptr;
  std::string replay_kind = opts.replay_store.empty() ? "embedded" : opts.replay_store;
  if (pg && (opts.replay_store.empty() || opts.replay_store == "postgres")) {
    replay_store = pg->replay();  // shared by every node, like Redis
    replay_kind = "postgres";
  } else if (opts.replay_store.empty() || opts.replay_store == "embedded") {
    if (pg) {
      return Fail("replay_store_failed",
                  Status::InvalidArgument("--replay-store embedded is per node: with a shared "
                                          "--store use redis://HOST:PORT or postgres"));
    }
    replay = store::OpenSqliteReplayStore(db_path, SystemClock());
  } else {
    auto ropts = store::ParseRedisUrl(opts.replay_store);
    if (!ropts.ok()) return Fail("replay_store_failed", ropts.status());
    replay = store::OpenRedisReplayStore(*ropts, SystemClock());
  }
  if (replay_store == nullptr) {
    if (!replay.ok()) return Fail("replay_store_failed", replay.status());
    replay_store = replay->get();
  }
  Log(LogLevel::kInfo, "server", "replay_store", {{"kind", replay_kind}});
  // --dev: keyd unseals itself from DATA/keyd/dev-root.key. Otherwise it starts
  // sealed and only the key routes answer until an operator unseals it.
  auto keyd = keyd::KeydProcess::Spawn(opts.bin_dir + "/toani-keyd", data + "/keyd", opts.dev);
  if (!keyd.ok()) return Fail("keyd_failed", keyd.status());
  uint16_t listen_port = opts.port;
  if ((*keyd)->Sealed()) {
    HttpsServerOptions sealed_opts;
    sealed_opts.listen_host = opts.listen_host == "localhost" ? "127.0.0.1" : opts.listen_host;
    sealed_opts.port = opts.port;
    sealed_opts.max_body_bytes = 64 * 1024;
    auto port = ServeWhileSealed(tls, sealed_opts, keyd->get(), sigs, [&](uint16_t p) {
      std::string h = sealed_opts.listen_host == "::1" ? "[::1]" : sealed_opts.listen_host;
      (void)WriteFileAtomic(data + "/server.json",
                            json{{"address", "https://" + h + ":" + std::to_string(p)},
                                 {"pid", ::getpid()},
                                 {"tenant", tenant},
                                 {"dev", false},
                                 {"sealed", true}}
                                    .dump() +
                                "\n");
    });
    if (!port.ok()) {
      fs::remove(data + "/server.json", ec);
      return port.status().code() == StatusCode::kUnavailable
                 ? 0
                 : Fail("listen_failed", port.status());
    }
    listen_port = *port;
  }
  auto keyd_status = (*keyd)->Call({{"op", "status"}});
  if (!keyd_status.ok()) return Fail("keyd_failed", keyd_status.status());
  if (pg) {
    // Every node must hold the cluster's keys, or what one node seals another cannot open.
    Status same = CheckClusterKeys(pg.get(), keyd->get(), tenant);
    if (!same.ok()) return Fail("cluster_keys_differ", same);
  }
  AuditPlaneOptions aopts;
  aopts.db_path = db_path;
  aopts.outbox_dir = data + "/audit/outbox";
  aopts.witness_dirs = opts.witness_dirs;
  if (aopts.witness_dirs.empty()) aopts.witness_dirs.push_back(data + "/witness");
  aopts.witness_urls = opts.witness_urls;
  aopts.witness_state_dir = data + "/audit/witnesses";
  aopts.witness_tls.ca_file = pki->ca_cert;
  if (pg) {
    aopts.shared_store = pg->audit();
    aopts.handoff = pg->handoff();
  }
  auto audit_plane = OpenAuditPlane(aopts, keyd->get(), *keyd_status);
  if (!audit_plane.ok()) return Fail("audit_failed", audit_plane.status());
  audit::AuditLog* audit_log = (*audit_plane)->log.get();

  // Per-execution directories hold the egress socket the sandbox user (65534)
  // must reach, so they cannot live under the 0700 data directory.
  std::string run_tmpl = (fs::temp_directory_path() / "toani-run-XXXXXX").string();
  if (::mkdtemp(run_tmpl.data()) == nullptr)
    return Fail("start_failed", Status::Unavailable("cannot create a run directory"));
  ::chmod(run_tmpl.c_str(), 0711);
  struct RunDirCleanup {
    std::string path;
    ~RunDirCleanup() {
      std::error_code e;
      fs::remove_all(path, e);
    }
  } run_cleanup{run_tmpl};
  ExecutorConfig ecfg;
  ecfg.connector_path = opts.bin_dir + "/toani-connector";
  ecfg.work_dir = run_tmpl;
  ecfg.connector_ca_file = pki->ca_cert;
  if (!opts.connector_ca.empty()) {
    // The dev CA plus the operator's extra CAs, in one bundle the sandbox gets a copy of.
    std::string bundle = ReadFileOrEmpty(pki->ca_cert) + ReadFileOrEmpty(opts.connector_ca);
    if (bundle.find("BEGIN CERTIFICATE") == std::string::npos ||
        ReadFileOrEmpty(opts.connector_ca).empty()) {
      return Fail("start_failed", Status::InvalidArgument("--connector-ca: no PEM certificate in " +
                                                          opts.connector_ca));
    }
    Status wb = WriteFileAtomic(data + "/connector-ca.pem", bundle);
    if (!wb.ok()) return Fail("start_failed", wb);
    ecfg.connector_ca_file = data + "/connector-ca.pem";
    Log(LogLevel::kInfo, "server", "connector_ca", {{"file", opts.connector_ca}});
  }
  // Pending webhook executions: shared in PostgreSQL (a callback may reach any node).
  std::unique_ptr<store::ExecutionStore> sqlite_executions;
  if (pg) {
    ecfg.executions = pg->executions();
  } else {
    auto executions = store::OpenSqliteExecutionStore(db_path);
    if (!executions.ok()) return Fail("store_failed", executions.status());
    sqlite_executions = std::move(*executions);
    ecfg.executions = sqlite_executions.get();
  }
  ecfg.public_url = opts.public_url;
  // Dev only: *.toani.test names resolve to loopback so local mock targets are
  // reachable. Every other check of the egress proxy still applies.
  if (opts.dev) {
    ecfg.resolver_overrides.push_back({"*.toani.test", "127.0.0.1"});
    Log(LogLevel::kWarn, "server", "resolver_override_enabled",
        {{"pattern", "*.toani.test"}, {"address", "127.0.0.1"}, {"why", "--dev"}});
  }
  for (const std::string& o : opts.resolver_overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == o.size()) {
      return Fail("start_failed", Status::InvalidArgument(
                                      "--resolver-override must be PATTERN=IP, got '" + o + "'"));
    }
    ResolverOverride ro{o.substr(0, eq), o.substr(eq + 1)};
    // Checked now (the proxy's own validation), not at the first execution.
    auto probe = EgressProxy::Start(run_tmpl + "/override-check.sock", {}, {ro});
    if (!probe.ok()) return Fail("start_failed", probe.status());
    (*probe)->Stop();
    ecfg.resolver_overrides.push_back(ro);
    Log(LogLevel::kWarn, "server", "resolver_override_enabled",
        {{"pattern", ro.host_pattern}, {"address", ro.address}, {"why", "--resolver-override"}});
  }
  auto runner = MakeBwrapRunner();
  ecfg.audit_outbox = (*audit_plane)->outbox.get();
  Executor executor(ecfg, store, replay_store, audit_log, keyd->get(), runner.get(),
                    (*keyd_status)["measurement"], SystemClock());
  // Sandboxes started ahead of their executions, refilled in the background; each is
  // used once (docs/connector-protocol.md §6.5). Destroyed before the executor.
  const SandboxPrepConfig prep = executor.SandboxPrep();
  SandboxPool sandbox_pool(opts.sandbox_pool_size,
                           [prep] { return PrepareSandbox(prep, /*browser=*/false); });
  executor.SetSandboxPool(&sandbox_pool);
  Log(LogLevel::kInfo, "server", "sandbox_pool", {{"size", opts.sandbox_pool_size}});
  // Policy plane (issue 5): with PostgreSQL, policy keys, approvals and limit counters
  // are shared by every node (an approval asked on one node is granted on another and
  // redeemed on a third); limit counters go to Redis when the replay store is Redis.
  // Embedded: SQLite (DATA/toani.db or --store sqlite:PATH).
  std::unique_ptr<store::PolicyKeyStore> sqlite_policy_keys;
  std::unique_ptr<store::ApprovalStore> sqlite_approvals;
  std::unique_ptr<store::LimitCounter> local_limits;
  store::PolicyKeyStore* policy_key_store = nullptr;
  store::ApprovalStore* approval_store = nullptr;
  store::LimitCounter* limit_counter = nullptr;
  std::string limits_kind;
  if (opts.replay_store.rfind("redis://", 0) == 0) {
    auto ropts = store::ParseRedisUrl(opts.replay_store);
    if (!ropts.ok()) return Fail("replay_store_failed", ropts.status());
    auto l = store::OpenRedisLimitCounter(*ropts);
    if (!l.ok()) return Fail("replay_store_failed", l.status());
    local_limits = std::move(*l);
    limit_counter = local_limits.get();
    limits_kind = "redis";
  }
  if (pg) {
    policy_key_store = pg->policy_keys();
    approval_store = pg->approvals();
    if (limit_counter == nullptr) {
      limit_counter = pg->limits();
      limits_kind = "postgres";
    }
  } else {
    auto policy_keys = store::OpenSqlitePolicyKeyStore(db_path);
    if (!policy_keys.ok()) return Fail("store_failed", policy_keys.status());
    sqlite_policy_keys = std::move(*policy_keys);
    policy_key_store = sqlite_policy_keys.get();
    auto approvals = store::OpenSqliteApprovalStore(db_path);
    if (!approvals.ok()) return Fail("store_failed", approvals.status());
    sqlite_approvals = std::move(*approvals);
    approval_store = sqlite_approvals.get();
    if (limit_counter == nullptr) {
      auto limits = store::OpenSqliteLimitCounter(db_path);
      if (!limits.ok()) return Fail("store_failed", limits.status());
      local_limits = std::move(*limits);
      limit_counter = local_limits.get();
      limits_kind = "sqlite";
    }
  }
  Log(LogLevel::kInfo, "server", "policy_stores",
      {{"approvals", pg ? "postgres" : "sqlite"}, {"limits", limits_kind}});
  // Approval webhook: announcements queue in this node's DATA/toani.db and survive
  // restarts (with PostgreSQL too: the node that took the request announces it).
  std::unique_ptr<store::WebhookOutbox> webhook_outbox;
  std::unique_ptr<ApprovalWebhook> approval_webhook;
  if (!opts.approval_webhook_url.empty()) {
    ApprovalWebhookConfig wcfg;
    wcfg.url = opts.approval_webhook_url;
    wcfg.secret_credential = opts.approval_webhook_secret_credential;
    wcfg.ca_file = opts.approval_webhook_ca;
    wcfg.timeout = std::chrono::seconds(opts.approval_webhook_timeout_seconds);
    if (Status v = ValidateApprovalWebhookConfig(wcfg); !v.ok()) return Fail("start_failed", v);
    auto ob = store::OpenSqliteWebhookOutbox(db_path);
    if (!ob.ok()) return Fail("store_failed", ob.status());
    webhook_outbox = std::move(*ob);
    auto w = ApprovalWebhook::Start(
        wcfg, {webhook_outbox.get(), approval_store, store, keyd->get(), SystemClock()});
    if (!w.ok()) return Fail("start_failed", w.status());
    approval_webhook = std::move(*w);
    Log(LogLevel::kInfo, "server", "approval_webhook",
        {{"url", wcfg.url}, {"secret_credential", wcfg.secret_credential}});
  }
  PolicyPlaneDeps pdeps;
  pdeps.announcer = approval_webhook.get();
  pdeps.store = store;
  pdeps.keys = policy_key_store;
  pdeps.approvals = approval_store;
  pdeps.limits = limit_counter;
  pdeps.audit = audit_log;
  pdeps.keyd = keyd->get();
  pdeps.keyd_status = *keyd_status;
  PolicyPlane policy_plane(pdeps);
  ApiDeps deps;
  deps.policy = &policy_plane;
  deps.store = store;
  deps.replay = replay_store;
  deps.mcp_allowed_origins = opts.mcp_allowed_origins;
  deps.audit = audit_log;
  deps.keyd = keyd->get();
  deps.executor = &executor;
  deps.keyd_status = *keyd_status;
  Api api(deps);

  api.table().set_rate_limit({opts.rate_limit_rps, opts.rate_limit_burst});
  HttpsServerOptions hopts;
  hopts.listen_host = opts.listen_host == "localhost" ? "127.0.0.1" : opts.listen_host;
  hopts.port = listen_port;
  hopts.max_body_bytes = opts.max_body_bytes;
  hopts.max_header_bytes = opts.max_header_bytes;
  hopts.read_timeout = std::chrono::seconds(opts.request_timeout_seconds);
  hopts.threads = opts.threads;
  hopts.max_connections = opts.max_connections;
  auto serve = [&api](bool mtls) {
    return [&api, mtls](const HttpRequest& r) {
      HttpResponse resp = api.Handle(r, mtls);
      Log(LogLevel::kInfo, "http", "request",
          {{"method", r.method},
           {"path", r.path},
           {"status", resp.status},
           {"peer", r.peer.uri_san},
           {"listener", mtls ? "mtls" : "public"}});
      return resp;
    };
  };
  auto https = HttpsServer::Start(tls, hopts, serve(true));
  if (!https.ok()) return Fail("listen_failed", https.status());
  std::unique_ptr<HttpsServer> public_https;
  if (!opts.public_listen.empty()) {
    HttpsServerOptions popts = hopts;
    Status st = ParseListen(opts.public_listen, &popts.listen_host, &popts.port);
    if (!st.ok()) return Fail("start_failed", st);
    TlsServerConfig ptls = tls;
    ptls.require_client_cert = false;
    auto p = HttpsServer::Start(ptls, popts, serve(false));
    if (!p.ok()) return Fail("listen_failed", p.status());
    public_https = std::move(p).value();
    Log(LogLevel::kInfo, "server", "public_listening",
        {{"port", public_https->port()}, {"serves", "public routes only"}});
  }
  std::string host = hopts.listen_host == "::1" ? "[::1]" : hopts.listen_host;
  std::string address = "https://" + host + ":" + std::to_string((*https)->port());
  if (opts.public_url.empty()) {
    // Callbacks come from targets without client certificates: the public listener
    // when there is one.
    executor.SetPublicUrl(
        public_https ? "https://" + host + ":" + std::to_string(public_https->port()) : address);
  }
  Status w = WriteFileAtomic(
      data + "/server.json",
      json{{"address", address}, {"pid", ::getpid()}, {"tenant", tenant}, {"dev", opts.dev}}
              .dump() +
          "\n");
  if (!w.ok()) return Fail("start_failed", w);
  Log(LogLevel::kInfo, "server", "listening",
      {{"address", address},
       {"data", data},
       {"audit_size", audit_log->size()},
       {"keyd_measurement", (*keyd_status)["measurement"]},
       {"attestation", "simulated"}});

  int sig = 0;
  sigwait(&sigs, &sig);
  Log(LogLevel::kInfo, "server", "stopping", {{"signal", sig}});
  (*https)->Stop();
  if (public_https) public_https->Stop();
  fs::remove(data + "/server.json", ec);
  return 0;
}

}  // namespace toani::server
