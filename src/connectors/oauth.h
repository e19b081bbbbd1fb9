// The oauth connector: exchanges the stored refresh token for an access token at the
// token endpoint (RFC 6749 §6), inside the sandbox, uses the access token for the
// job's request and discards it. A refresh token rotated by the server is returned
// sealed to keyd's intake key so the stored credential stays current.
#pragma once

#include <string>

#include "common/status.h"
#include "connectors/credential_set.h"
#include "connectors/http_fetch.h"
#include "connectors/http_job.h"

namespace toani {

struct OauthOutcome {
  Status status;  // of the whole run; the fields below are set even on failure
  HttpResponse response;
  // base64url crypto_box_seal(new credential JSON, job.reseal_public_key) when the
  // token endpoint rotated the refresh token; "" otherwise.
  std::string resealed_credential;
  int exchanges = 0;  // token requests made (2 when the first access token was refused)
};

// The credential must be a JSON object with "client_id" and "refresh_token" (and
// "client_secret" for confidential clients). Every token learned is added to `creds`
// for scrubbing. If the resource answers 401, exchanges once more and retries once.
// A rotated refresh token is resealed even when a later step fails, so it is never lost.
OauthOutcome PerformOauth(const HttpJob& job, CredentialSet& creds);

}  // namespace toani
