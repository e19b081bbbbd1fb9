// Routes of the key plane (docs/api.md "Keys"):
//   GET  /v1/sys/status         seal state and progress (any authenticated caller)
//   POST /v1/sys/init           operator: make L0 and its shares (sealed to the caller's key)
//   POST /v1/sys/unseal         operator: one share (sealed to keyd's intake key), or reset
//   POST /v1/sys/rekey          operator: new shares from a quorum of current ones
//   GET  /v1/attestation        keyd's attestation evidence for ?nonce=<base64url>
//   GET  /v1/keyd               keyd's current intake key and measurement
//   POST /v1/tenant/rotate-key  operator: a new L1 version for the caller's tenant
// and the sealed gate: while keyd is sealed, every other route answers 503.
// The server relays only ciphertext: shares travel sealed to keyd or to the operator.
#pragma once

#include <csignal>
#include <nlohmann/json.hpp>
#include <optional>

#include "keyd/client.h"
#include "server/api.h"
#include "server/https_server.h"
#include "server/identity.h"

namespace toani::server {

// A response for the routes above, or 503 for any other route while keyd is sealed;
// nullopt when the request is for another handler.
std::optional<HttpResponse> HandleKeyRoute(keyd::KeyServiceClient* keyd, const Caller& c,
                                           const HttpRequest& req, const nlohmann::json& body);

// Start-up while keyd is sealed: serves only HandleKeyRoute (everything else 503) on
// `options` until keyd is unsealed (returns the port it listened on, so the full
// server can take it over) or a signal in `sigs` arrives (returns Unavailable).
// `on_listening(address)` runs once the listener is up.
StatusOr<uint16_t> ServeWhileSealed(const TlsServerConfig& tls, HttpsServerOptions options,
                                    keyd::KeyServiceClient* keyd, const sigset_t& sigs,
                                    const std::function<void(uint16_t port)>& on_listening);

}  // namespace toani::server
