// Routes of the key plane (docs/api.md "Keys"):
//   GET  /v1/sys/status         seal state and progress (any authenticated caller)
//   POST /v1/sys/init           operator: make L0 and its shares (sealed to the caller's key)
//   POST /v1/sys/unseal         operator: one share (sealed to keyd's intake key), or reset
//   POST /v1/sys/rekey          operator: new shares from a quorum of current ones
//   GET  /v1/attestation        keyd's attestation evidence for ?nonce=<base64url>
//   GET  /v1/keyd               keyd's current intake key and measurement
//   POST /v1/tenant/rotate-key  operator: a new L1 version for the caller's tenant
// registered by RegisterKeyRoutes (api.h). While keyd is sealed, every route not
// marked while_sealed answers 503 (RouteTable).
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

// Start-up while keyd is sealed: serves only the key routes (everything else 503) on
// `options` until keyd is unsealed (returns the port it listened on, so the full
// server can take it over) or a signal in `sigs` arrives (returns Unavailable).
// `on_listening(address)` runs once the listener is up.
StatusOr<uint16_t> ServeWhileSealed(const TlsServerConfig& tls, HttpsServerOptions options,
                                    keyd::KeyServiceClient* keyd, const sigset_t& sigs,
                                    const std::function<void(uint16_t port)>& on_listening);

}  // namespace toani::server
