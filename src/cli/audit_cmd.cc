#include "cli/audit_cmd.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "audit/bundle.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "cli/client.h"
#include "common/encoding.h"

namespace toani::cli {
namespace {

using nlohmann::json;

// --key takes a vkey, or a file holding one.
StatusOr<audit::VerifierKey> LoadKey(const std::string& arg) {
  std::string v = arg;
  std::error_code ec;
  if (std::filesystem::is_regular_file(arg, ec)) {
    auto text = ReadWholeFile(arg);
    if (!text) return Status::InvalidArgument("cannot read " + arg);
    v = text->substr(0, text->find('\n'));
  }
  return audit::ParseVerifierKey(v);
}

StatusOr<ApiClient> Client(const std::string& data) {
  const char* addr = std::getenv("TOANI_ADDR");
  return ApiClient::Connect(data, addr != nullptr ? addr : "");
}

StatusOr<json> Get(const std::string& data, const std::string& path) {
  TOANI_ASSIGN_OR_RETURN(ApiClient c, Client(data));
  TOANI_ASSIGN_OR_RETURN(ApiReply r, c.Call(As::kAdmin, "GET", path));
  if (r.status != 200) return Status::Unavailable(ProblemText(r));
  return r.body;
}

int Verify(const AuditCommands& c) {
  auto key = LoadKey(c.vkey);
  if (!key.ok()) return PrintError("--key: " + key.status().message());
  auto bundle = ReadWholeFile(c.file);
  if (!bundle) return PrintError("cannot read " + c.file);
  std::printf("verifying %s offline with key %s\n", c.file.c_str(),
              audit::FormatVerifierKey(*key).c_str());
  audit::VerifyReport r = audit::VerifyBundle(*bundle, *key);
  for (const auto& l : r.checked) std::printf("  ok    %s\n", l.c_str());
  for (const auto& l : r.failures) std::printf("  FAIL  %s\n", l.c_str());
  std::printf(r.ok() ? "VERIFIED\n" : "VERIFICATION FAILED (%zu problems)\n", r.failures.size());
  return r.ok() ? 0 : 1;
}

int Export(const AuditCommands& c, const std::string& data) {
  std::string path = "/v1/audit/export?from=" + std::to_string(c.from);
  if (c.to > 0) path += "&to=" + std::to_string(c.to);
  auto body = Get(data, path);
  if (!body.ok()) return PrintError(body.status().message());
  if (!body->contains("raw")) return PrintError("the server did not return a bundle");
  std::ofstream out(c.out, std::ios::binary | std::ios::trunc);
  out << (*body)["raw"].get<std::string>();
  if (!out.flush()) return PrintError("cannot write " + c.out);
  std::printf("wrote %s; verify it offline with: toani audit verify %s --key <pinned vkey>\n",
              c.out.c_str(), c.out.c_str());
  return 0;
}

int Prove(const AuditCommands& c, const std::string& data) {
  auto body = Get(data, "/v1/audit/proof?index=" + std::to_string(c.index));
  if (!body.ok()) return PrintError(body.status().message());
  std::printf("%s\n%s", body->value("entry", "").c_str(), body->value("tlog_proof", "").c_str());
  return 0;
}

int Consistency(const AuditCommands& c, const std::string& data) {
  auto old_note = ReadWholeFile(c.file);
  if (!old_note) return PrintError("cannot read " + c.file);
  StatusOr<audit::VerifierKey> key = Status::InvalidArgument("no key");
  if (!c.vkey.empty()) {
    key = LoadKey(c.vkey);
  } else {
    auto k = Get(data, "/v1/audit/key");
    if (!k.ok()) return PrintError(k.status().message());
    key = audit::ParseVerifierKey(k->value("vkey", ""));
    std::fprintf(stderr, "warning: no --key given; using the key the server reports\n");
  }
  if (!key.ok()) return PrintError("key: " + key.status().message());
  auto old_cp = audit::VerifyCheckpoint(*old_note, *key);
  if (!old_cp.ok()) return PrintError("old checkpoint: " + old_cp.status().message());
  if (old_cp->size == 0) return PrintError("the old checkpoint is of the empty tree: nothing to prove");
  auto body = Get(data, "/v1/audit/consistency?old=" + std::to_string(old_cp->size));
  if (!body.ok()) return PrintError(body.status().message());
  auto new_cp = audit::VerifyCheckpoint(body->value("checkpoint", ""), *key);
  if (!new_cp.ok()) return PrintError("current checkpoint: " + new_cp.status().message());
  std::vector<audit::Hash> proof;
  for (const auto& p : body->value("proof", json::array())) {
    auto h = Base64Decode(p.get<std::string>());
    if (!h.ok() || h->size() != 32) return PrintError("malformed proof hash");
    audit::Hash hh;
    std::copy(h->begin(), h->end(), hh.begin());
    proof.push_back(hh);
  }
  Status st =
      audit::VerifyConsistency(old_cp->size, new_cp->size, proof, old_cp->root, new_cp->root);
  std::printf(
      "old checkpoint: size %llu (signature ok)\ncurrent checkpoint: size %llu (signature ok)\n",
      static_cast<unsigned long long>(old_cp->size), static_cast<unsigned long long>(new_cp->size));
  if (!st.ok()) {
    std::printf("INCONSISTENT: %s\n", st.message().c_str());
    return 1;
  }
  std::printf("consistency proof (%zu hashes): ok — the current log extends the old one\n",
              proof.size());
  return 0;
}

}  // namespace

std::unique_ptr<AuditCommands> AddAuditCommands(CLI::App* audit) {
  auto c = std::make_unique<AuditCommands>();
  c->export_cmd =
      audit->add_subcommand("export", "export a proof bundle (C2SP tlog-proofs + entries)");
  c->export_cmd->add_option("--from", c->from, "first index (default 0)");
  c->export_cmd->add_option("--to", c->to, "end index, exclusive (default: the checkpoint size)");
  c->export_cmd->add_option("--out", c->out, "bundle file to write")->required();
  c->verify = audit->add_subcommand("verify", "verify a bundle offline (no server needed)");
  c->verify->add_option("file", c->file, "bundle file")->required();
  c->verify->add_option("--key", c->vkey, "the log's verifier key (or a file holding it)")
      ->required();
  c->prove = audit->add_subcommand("prove", "print an entry and its C2SP tlog-proof");
  c->prove->add_option("--index", c->index, "entry index")->required();
  c->consistency = audit->add_subcommand("consistency", "prove the log extends an old checkpoint");
  c->consistency->add_option("old_checkpoint", c->file, "a checkpoint file saved earlier")
      ->required();
  c->consistency->add_option("--key", c->vkey, "the log's verifier key (default: ask the server)");
  c->key = audit->add_subcommand("key", "print the log's verifier key (pin it out of band)");
  return c;
}

std::optional<int> RunAuditCommand(const AuditCommands& c, const std::string& data) {
  if (*c.verify) return Verify(c);
  if (*c.export_cmd) return Export(c, data);
  if (*c.prove) return Prove(c, data);
  if (*c.consistency) return Consistency(c, data);
  if (*c.key) {
    auto k = Get(data, "/v1/audit/key");
    if (!k.ok()) return PrintError(k.status().message());
    std::printf("%s\n", k->value("vkey", "").c_str());
    return 0;
  }
  return std::nullopt;
}

}  // namespace toani::cli
