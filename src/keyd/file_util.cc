#include "keyd/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace toani::keyd {
namespace {

Status WriteAllFd(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::Unavailable("keyd: write failed");
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

void SyncDir(const std::string& path) {
  std::string dir = path.substr(0, path.find_last_of('/'));
  int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    ::fsync(d);
    ::close(d);
  }
}

}  // namespace

StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("keyd: no such file: " + path);
    return Status::Unavailable("keyd: cannot open " + path);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ::close(fd);
      return Status::Unavailable("keyd: cannot read " + path);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
    if (out.size() > max_bytes) {
      ::close(fd);
      return Status::FailedPrecondition("keyd: file too large: " + path);
    }
  }
  ::close(fd);
  return out;
}

StatusOr<SecretBytes> ReadSecretFile(const std::string& path, size_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("keyd: no such file: " + path);
    return Status::Unavailable("keyd: cannot open " + path);
  }
  SecretBytes out(size);
  size_t got = 0;
  while (got < size) {
    ssize_t r = ::read(fd, out.UnsafeMutableData() + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  uint8_t extra;
  ssize_t more = ::read(fd, &extra, 1);
  ::close(fd);
  if (got != size || more != 0)
    return Status::FailedPrecondition("keyd: key file is corrupt: " + path);
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("keyd: cannot create " + tmp);
  Status st = WriteAllFd(fd, reinterpret_cast<const uint8_t*>(content.data()), content.size());
  if (st.ok() && ::fsync(fd) != 0) st = Status::Unavailable("keyd: fsync failed: " + tmp);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::Unavailable("keyd: rename failed: " + path);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  SyncDir(path);
  return Status::Ok();
}

Status WriteSecretFileExclusive(const std::string& path, const SecretBytes& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("keyd: cannot create " + path);
  Status st = WriteAllFd(fd, content.UnsafeBytes().data(), content.size());
  if (st.ok() && ::fsync(fd) != 0) st = Status::Unavailable("keyd: fsync failed: " + path);
  ::close(fd);
  if (!st.ok()) ::unlink(path.c_str());
  SyncDir(path);
  return st;
}

}  // namespace toani::keyd
