// PASETO Pre-Authentication Encoding (Common.md "Authentication Padding"):
// LE64(count) || for each piece LE64(len) || piece, the top bit of every LE64
// cleared. Shared by v4.local and v4.public.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>

#include "common/encoding.h"

namespace toani::crypto {

Bytes Pae(std::initializer_list<std::span<const uint8_t>> pieces);

}  // namespace toani::crypto
