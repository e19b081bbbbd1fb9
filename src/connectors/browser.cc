#include "connectors/browser.h"

namespace toani {

BrowserOutcome RunBrowser(const HttpJob&, const CredentialSet&) {
  return {Status::Unavailable("browser connector: not built yet")};
}

}  // namespace toani
