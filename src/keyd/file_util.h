// Small file helpers for keyd's state directory: whole-file reads and atomic,
// durable replacement (write to a temporary, fsync, rename, fsync the directory).
#pragma once

#include <string>

#include "common/secret.h"
#include "common/status.h"

namespace toani::keyd {

// NotFound if the file does not exist.
StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes = 1 << 20);
// Reads exactly `size` bytes straight into secret memory (no stdio buffer copies).
StatusOr<SecretBytes> ReadSecretFile(const std::string& path, size_t size);
// Mode 0600.
Status WriteFileAtomic(const std::string& path, std::string_view content);
Status WriteSecretFileExclusive(const std::string& path, const SecretBytes& content);

}  // namespace toani::keyd
