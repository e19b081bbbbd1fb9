// SecretBytes: a buffer for key material and credential plaintext. Lives in
// sodium_malloc'd memory (guard pages, mlock'd, excluded from core dumps where the
// kernel allows), wiped on free, compared in constant time, never printable.
// Every place that touches the raw bytes says so: secret.UnsafeBytes().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace toani {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);  // zero-filled
  static SecretBytes Copy(std::span<const uint8_t> bytes);
  static SecretBytes Copy(std::string_view bytes);
  static SecretBytes Random(size_t size);
  ~SecretBytes();
  SecretBytes(SecretBytes&& o) noexcept;
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Raw access: every call site is a place where a secret is touched.
  uint8_t* UnsafeMutableData() { return data_; }
  std::span<const uint8_t> UnsafeBytes() const { return {data_, size_}; }
  std::string_view UnsafeView() const { return {reinterpret_cast<const char*>(data_), size_}; }
  bool ConstantTimeEquals(const SecretBytes& o) const;

 private:
  void Release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A process may route SecretBytes allocations to a stronger allocator (toani-keyd:
// memfd_secret memory, see src/keyd/secure_memory.h). `alloc` returns nullptr to fall
// back to sodium_malloc; `release` wipes and returns true if the pointer was its own.
// Install once, before any SecretBytes exists; not thread-safe to change.
struct SecretAllocator {
  void* (*alloc)(size_t size) = nullptr;
  bool (*release)(void* p, size_t size) = nullptr;
};
void SetSecretAllocator(SecretAllocator a);

// Wipes a non-secret-typed buffer (e.g. a std::string that briefly held plaintext).
void SecureWipe(void* p, size_t n);

}  // namespace toani
