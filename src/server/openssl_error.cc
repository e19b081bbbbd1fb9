#include "server/openssl_error.h"

#include <openssl/err.h>

namespace toani {

std::string OpenSslError(std::string_view what) {
  std::string msg(what);
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += ": ";
    msg += buf;
  }
  return msg;
}

}  // namespace toani
