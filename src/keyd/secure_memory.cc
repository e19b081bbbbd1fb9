#include "keyd/secure_memory.h"

#include <sodium.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include "common/secret.h"

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

namespace toani::keyd {
namespace {

constexpr size_t kBlock = 64;

struct Arena {
  std::mutex mu;
  uint8_t* base = nullptr;
  size_t size = 0;
  std::vector<bool> used;  // one bit per block
  size_t hint = 0;
  std::string kind = "none";
};

Arena& A() {
  static Arena* a = new Arena();  // never destroyed: SecretBytes may outlive statics
  return *a;
}

void* ArenaAlloc(size_t n) {
  Arena& a = A();
  size_t need = (n + kBlock - 1) / kBlock;
  std::lock_guard<std::mutex> lock(a.mu);
  const size_t blocks = a.used.size();
  for (size_t pass = 0; pass < 2; ++pass) {
    size_t start = pass == 0 ? a.hint : 0;
    size_t end = pass == 0 ? blocks : a.hint + need;
    size_t run = 0;
    for (size_t i = start; i < blocks && i < end; ++i) {
      run = a.used[i] ? 0 : run + 1;
      if (run == need) {
        size_t first = i + 1 - need;
        for (size_t j = first; j <= i; ++j) a.used[j] = true;
        a.hint = i + 1;
        return a.base + first * kBlock;
      }
    }
  }
  return nullptr;  // full: SecretBytes falls back to sodium_malloc
}

bool ArenaRelease(void* p, size_t n) {
  Arena& a = A();
  auto* b = static_cast<uint8_t*>(p);
  if (a.base == nullptr || b < a.base || b >= a.base + a.size) return false;
  size_t first = static_cast<size_t>(b - a.base) / kBlock;
  size_t count = (n + kBlock - 1) / kBlock;
  sodium_memzero(b, count * kBlock);
  std::lock_guard<std::mutex> lock(a.mu);
  for (size_t j = first; j < first + count && j < a.used.size(); ++j) a.used[j] = false;
  if (first < a.hint) a.hint = first;
  return true;
}

}  // namespace

Status InstallSecretArena(size_t bytes) {
  Arena& a = A();
  if (a.base != nullptr) return Status::FailedPrecondition("secret arena already installed");
  long page = ::sysconf(_SC_PAGESIZE);
  size_t ps = page > 0 ? static_cast<size_t>(page) : 4096;
  size_t size = (bytes + ps - 1) / ps * ps;
  void* mem = MAP_FAILED;
  long fd = ::syscall(SYS_memfd_secret, 0);
  if (fd >= 0) {
    int ifd = static_cast<int>(fd);
    if (::ftruncate(ifd, static_cast<off_t>(size)) == 0) {
      mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, ifd, 0);
    }
    ::close(ifd);
    // Touch every page now: secretmem faults can fail later under RLIMIT_MEMLOCK.
    if (mem != MAP_FAILED) {
      if (::mlock(mem, size) != 0) { /* secretmem pages are unevictable regardless */
      }
      sodium_memzero(mem, size);
      a.kind = "memfd_secret";
    }
  }
  if (mem == MAP_FAILED) {
    mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return Status::Unavailable("secret arena: mmap failed");
    if (::mlock(mem, size) != 0) {
      ::munmap(mem, size);
      return Status::Unavailable("secret arena: mlock failed (raise RLIMIT_MEMLOCK)");
    }
    ::madvise(mem, size, MADV_DONTDUMP);
    ::madvise(mem, size, MADV_WIPEONFORK);
    a.kind = "mlock";
  }
  a.base = static_cast<uint8_t*>(mem);
  a.size = size;
  a.used.assign(size / kBlock, false);
  SetSecretAllocator({&ArenaAlloc, &ArenaRelease});
  return Status::Ok();
}

std::string SecretArenaKind() { return A().kind; }

bool InSecretArena(const void* p) {
  Arena& a = A();
  auto* b = static_cast<const uint8_t*>(p);
  return a.base != nullptr && b >= a.base && b < a.base + a.size;
}

}  // namespace toani::keyd
