// Drains OpenSSL's thread-local error queue into a readable message.
#pragma once

#include <string>
#include <string_view>

namespace toani {

std::string OpenSslError(std::string_view what);

}  // namespace toani
