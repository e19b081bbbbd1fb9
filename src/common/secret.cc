#include "common/secret.h"

#include <sodium.h>
#include <sys/mman.h>

#include <cstring>
#include <new>

namespace toani {
namespace {
SecretAllocator g_alloc;
}  // namespace

void SetSecretAllocator(SecretAllocator a) { g_alloc = a; }

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) return;
  if (sodium_init() < 0) std::abort();
  if (g_alloc.alloc != nullptr) {
    data_ = static_cast<uint8_t*>(g_alloc.alloc(size));
    if (data_ != nullptr) {
      std::memset(data_, 0, size);
      return;
    }
  }
  data_ = static_cast<uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) throw std::bad_alloc();
  madvise(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(data_) & ~uintptr_t{4095}), 4096,
          MADV_DONTDUMP);
  std::memset(data_, 0, size);
}

SecretBytes SecretBytes::Copy(std::span<const uint8_t> bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) std::memcpy(s.data_, bytes.data(), bytes.size());
  return s;
}

SecretBytes SecretBytes::Copy(std::string_view bytes) {
  return Copy(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

SecretBytes SecretBytes::Random(size_t size) {
  SecretBytes s(size);
  randombytes_buf(s.data_, size);
  return s;
}

SecretBytes::~SecretBytes() { Release(); }

void SecretBytes::Release() {
  if (data_ != nullptr && !(g_alloc.release != nullptr && g_alloc.release(data_, size_))) {
    sodium_free(data_);  // sodium_free wipes before unmapping
  }
  data_ = nullptr;
  size_ = 0;
}

SecretBytes::SecretBytes(SecretBytes&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    Release();
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

bool SecretBytes::ConstantTimeEquals(const SecretBytes& o) const {
  if (size_ != o.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, o.data_, size_) == 0;
}

void SecureWipe(void* p, size_t n) {
  if (p != nullptr && n > 0) sodium_memzero(p, n);
}

}  // namespace toani
