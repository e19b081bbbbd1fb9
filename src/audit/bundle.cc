#include "audit/bundle.h"

#include <charconv>
#include <map>

#include "audit/entry.h"
#include "common/encoding.h"

namespace toani::audit {
namespace {

constexpr std::string_view kMagic = "toani-audit-bundle v1\n";
constexpr std::string_view kProofHeader = "c2sp.org/tlog-proof@v1";

std::string Hex(const Hash& h) { return HexEncode(std::span<const uint8_t>(h.data(), h.size())); }

void Section(std::string* out, const std::string& name, std::string_view body) {
  *out += "-----BEGIN " + name + "-----\n";
  *out += body;
  if (body.empty() || body.back() != '\n') *out += "\n";
  *out += "-----END " + name + "-----\n";
}

constexpr const char* kGuide =
    R"(How to verify this bundle without toani (all formats are published standards):
1. Pin the log's verifier key (C2SP signed-note vkey: name+keyid+base64(0x01||pubkey))
   from a source you trust - not from the KEY section of this file.
2. CHECKPOINT is a C2SP tlog-checkpoint signed note. Its note text is the three lines up
   to and including the first newline before the blank line. Check the signature line
   whose key name and 4-byte key id match your key: Ed25519 (RFC 8032) over the note
   text, e.g. golang.org/x/mod/sumdb/note.Open, or
   openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in text -sigfile sig.
   Line 2 is the tree size, line 3 the base64 RFC 9162 root hash.
3. Each ENTRY i is an RFC 8785 canonical JSON audit record (docs/audit-format.md).
   Remove the "sig" member, re-canonicalise: that is the signed body; "sig" is the
   base64 Ed25519 signature over it by the same key.
4. Each PROOF i is a C2SP tlog-proof: leaf hash = SHA-256(0x00 || ENTRY bytes); check the
   RFC 9162 inclusion proof (one base64 hash per line) for index i against the
   checkpoint's size and root, e.g. golang.org/x/mod/sumdb/tlog.CheckRecord. Its embedded
   checkpoint must equal CHECKPOINT.
5. "prev" of entry i is the hex leaf hash of entry i-1: consecutive entries must chain.
6. ATTESTATION is keyd's evidence. "simulated": true means no hardware TEE vouches for
   the measurement; every entry's "tee" must name the same measurement.
toani audit verify FILE --key VKEY performs all of the above and prints each check.
)";

std::map<std::string, std::string> Sections(std::string_view b, std::vector<std::string>* order,
                                            std::string* error) {
  std::map<std::string, std::string> out;
  while (!b.empty()) {
    size_t nl = b.find('\n');
    std::string_view line = b.substr(0, nl);
    b.remove_prefix(nl == std::string_view::npos ? b.size() : nl + 1);
    if (line.empty()) continue;
    if (line.substr(0, 11) != "-----BEGIN " || line.size() < 16 ||
        line.substr(line.size() - 5) != "-----") {
      *error = "unexpected line outside a section";
      return {};
    }
    std::string name(line.substr(11, line.size() - 16));
    std::string end = "-----END " + name + "-----\n";
    size_t e = b.find(end);
    if (e == std::string_view::npos || (e > 0 && b[e - 1] != '\n')) {
      *error = "section " + name + " is not terminated";
      return {};
    }
    if (out.count(name) != 0) {
      *error = "section " + name + " appears twice";
      return {};
    }
    out[name] = std::string(b.substr(0, e));
    order->push_back(name);
    b.remove_prefix(e + end.size());
  }
  return out;
}

}  // namespace

std::string FormatTlogProof(uint64_t index, const std::vector<Hash>& proof,
                            std::string_view checkpoint) {
  std::string out = std::string(kProofHeader) + "\nindex " + std::to_string(index) + "\n";
  for (const Hash& h : proof)
    out += Base64Encode(std::span<const uint8_t>(h.data(), h.size())) + "\n";
  out += "\n";
  out += checkpoint;
  return out;
}

StatusOr<TlogProof> ParseTlogProof(std::string_view t) {
  auto next = [&t]() -> std::optional<std::string_view> {
    size_t nl = t.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view l = t.substr(0, nl);
    t.remove_prefix(nl + 1);
    return l;
  };
  auto l = next();
  if (!l || *l != kProofHeader) return Status::InvalidArgument("tlog-proof: bad header");
  l = next();
  if (l && l->substr(0, 6) == "extra ") l = next();
  if (!l || l->substr(0, 6) != "index ")
    return Status::InvalidArgument("tlog-proof: no index line");
  TlogProof p;
  std::string_view num = l->substr(6);
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), p.index);
  if (num.empty() || ec != std::errc() || ptr != num.data() + num.size() ||
      (num.size() > 1 && num[0] == '0')) {
    return Status::InvalidArgument("tlog-proof: bad index");
  }
  while (true) {
    l = next();
    if (!l) return Status::InvalidArgument("tlog-proof: no checkpoint");
    if (l->empty()) break;
    auto h = Base64Decode(*l);
    if (!h.ok() || h->size() != 32 || p.proof.size() >= 64)
      return Status::InvalidArgument("tlog-proof: bad proof hash");
    Hash hh;
    std::copy(h->begin(), h->end(), hh.begin());
    p.proof.push_back(hh);
  }
  p.checkpoint = std::string(t);
  return p;
}

std::string BuildBundle(const BundleParts& parts) {
  std::string out(kMagic);
  Section(&out, "GUIDE", kGuide);
  Section(&out, "KEY", parts.vkey);
  Section(&out, "ATTESTATION", parts.attestation.dump());
  Section(&out, "CHECKPOINT", parts.checkpoint);
  for (const auto& e : parts.entries) {
    Section(&out, "ENTRY " + std::to_string(e.index), e.entry);
    Section(&out, "PROOF " + std::to_string(e.index),
            FormatTlogProof(e.index, e.proof, parts.checkpoint));
  }
  return out;
}

VerifyReport VerifyBundle(std::string_view b, const VerifierKey& key) {
  VerifyReport r;
  auto fail = [&r](std::string m) { r.failures.push_back(std::move(m)); };
  if (b.substr(0, kMagic.size()) != kMagic) {
    fail("not a toani audit bundle (first line)");
    return r;
  }
  std::vector<std::string> order;
  std::string err;
  auto sec = Sections(b.substr(kMagic.size()), &order, &err);
  if (!err.empty()) {
    fail("bundle structure: " + err);
    return r;
  }
  if (sec.count("CHECKPOINT") == 0) {
    fail("no CHECKPOINT section");
    return r;
  }
  const std::string& note = sec["CHECKPOINT"];
  auto cp = VerifyCheckpoint(note, key);
  if (!cp.ok()) {
    fail("checkpoint: " + cp.status().message());
    return r;
  }
  r.checked.push_back("checkpoint signature by " + key.name + " (key id " +
                      HexEncode(std::vector<uint8_t>{static_cast<uint8_t>(key.key_id >> 24),
                                                     static_cast<uint8_t>(key.key_id >> 16),
                                                     static_cast<uint8_t>(key.key_id >> 8),
                                                     static_cast<uint8_t>(key.key_id)}) +
                      "): ok; tree size " + std::to_string(cp->size) + ", root " + Hex(cp->root));
  std::string measurement;
  bool simulated = false;
  if (sec.count("ATTESTATION") != 0) {
    auto a = nlohmann::json::parse(sec["ATTESTATION"], nullptr, false);
    if (a.is_object() && a.contains("measurement") && a["measurement"].is_string()) {
      measurement = a["measurement"].get<std::string>();
      simulated = a.value("simulated", true);
    }
  }
  // Entries in the order they appear; each needs its PROOF.
  uint64_t n_entries = 0;
  std::optional<uint64_t> prev_index;
  Hash prev_leaf{};
  for (const std::string& name : order) {
    if (name.rfind("ENTRY ", 0) != 0) continue;
    const std::string idx_str = name.substr(6);
    uint64_t idx = 0;
    auto [p, ec] = std::from_chars(idx_str.data(), idx_str.data() + idx_str.size(), idx);
    if (ec != std::errc() || p != idx_str.data() + idx_str.size()) {
      fail("section " + name + ": bad index");
      continue;
    }
    std::string entry = sec[name];
    if (!entry.empty() && entry.back() == '\n') entry.pop_back();
    ++n_entries;
    auto e = VerifyEntry(entry, idx, key);
    if (!e.ok()) {
      fail("entry " + idx_str + ": " + e.status().message());
      continue;
    }
    const Hash leaf = LeafHash(AsBytes(entry));
    auto proof_it = sec.find("PROOF " + idx_str);
    if (proof_it == sec.end()) {
      fail("entry " + idx_str + ": no inclusion proof");
      continue;
    }
    auto tp = ParseTlogProof(proof_it->second);
    if (!tp.ok()) {
      fail("entry " + idx_str + ": " + tp.status().message());
      continue;
    }
    if (tp->index != idx)
      fail("entry " + idx_str + ": proof is for index " + std::to_string(tp->index));
    if (tp->checkpoint != note) fail("entry " + idx_str + ": proof carries a different checkpoint");
    Status inc = VerifyInclusion(idx, cp->size, leaf, tp->proof, cp->root);
    if (!inc.ok()) fail("entry " + idx_str + ": inclusion proof: " + inc.message());
    if (prev_index && *prev_index + 1 == idx && (*e)["prev"] != Hex(prev_leaf)) {
      fail("entry " + idx_str + ": hash chain broken (prev is not the leaf hash of entry " +
           std::to_string(*prev_index) + ")");
    }
    if (prev_index && idx <= *prev_index) fail("entry " + idx_str + ": entries out of order");
    if (!measurement.empty() &&
        (!(*e).contains("tee") || (*e)["tee"].value("measurement", "") != measurement)) {
      fail("entry " + idx_str + ": keyd measurement differs from the attestation");
    }
    prev_index = idx;
    prev_leaf = leaf;
  }
  if (n_entries == 0) {
    fail("bundle holds no entries");
    return r;
  }
  if (r.failures.empty()) {
    r.checked.push_back(std::to_string(n_entries) +
                        " entries: canonical RFC 8785 form, Ed25519 entry signature, index: ok");
    r.checked.push_back(std::to_string(n_entries) +
                        " inclusion proofs (RFC 9162, C2SP tlog-proof) against the checkpoint: ok");
    r.checked.push_back("hash chain (prev) across consecutive exported entries: ok");
    if (!measurement.empty()) {
      r.checked.push_back(
          "keyd measurement " + measurement + " in every entry" +
          (simulated ? " (SIMULATED attestation: no hardware TEE vouches for it)" : ""));
    }
  }
  return r;
}

}  // namespace toani::audit
