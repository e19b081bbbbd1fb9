#include "sandbox/tls_sni.h"

#include <vector>

namespace toani {
namespace {

constexpr size_t kMaxHello = 64 * 1024;

// A bounds-checked big-endian reader over the reassembled handshake message.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool Skip(size_t k) {
    if (k > n_ - pos_) return false;
    pos_ += k;
    return true;
  }
  bool U8(size_t* v) {
    if (pos_ + 1 > n_) return false;
    *v = p_[pos_++];
    return true;
  }
  bool U16(size_t* v) {
    if (pos_ + 2 > n_) return false;
    *v = (size_t{p_[pos_]} << 8) | p_[pos_ + 1];
    pos_ += 2;
    return true;
  }
  bool U24(size_t* v) {
    if (pos_ + 3 > n_) return false;
    *v = (size_t{p_[pos_]} << 16) | (size_t{p_[pos_ + 1]} << 8) | p_[pos_ + 2];
    pos_ += 3;
    return true;
  }
  // A sub-reader over the next `len` bytes (and skips them here).
  bool Sub(size_t len, Reader* out) {
    if (len > n_ - pos_) return false;
    *out = Reader(p_ + pos_, len);
    pos_ += len;
    return true;
  }
  const uint8_t* here() const { return p_ + pos_; }
  size_t left() const { return n_ - pos_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

}  // namespace

SniResult ExtractTlsSni(const uint8_t* data, size_t size, std::string* sni) {
  // Reassemble handshake bytes from consecutive handshake records (type 22).
  std::vector<uint8_t> hs;
  size_t off = 0;
  size_t need = 0;  // full handshake message length once known
  while (true) {
    if (need != 0 && hs.size() >= need) break;
    if (size - off < 5) return size > kMaxHello ? SniResult::kNotTls : SniResult::kNeedMore;
    if (data[off] != 22 || data[off + 1] != 3) return SniResult::kNotTls;
    const size_t len = (size_t{data[off + 3]} << 8) | data[off + 4];
    if (len == 0 || len > 16384 + 256) return SniResult::kNotTls;
    if (size - off - 5 < len) return SniResult::kNeedMore;
    hs.insert(hs.end(), data + off + 5, data + off + 5 + len);
    off += 5 + len;
    if (need == 0 && hs.size() >= 4) {
      if (hs[0] != 1) return SniResult::kNotTls;  // ClientHello
      need = 4 + ((size_t{hs[1]} << 16) | (size_t{hs[2]} << 8) | hs[3]);
      if (need > kMaxHello) return SniResult::kNotTls;
    }
    if (off > kMaxHello) return SniResult::kNotTls;
  }
  Reader r(hs.data(), need);
  size_t v = 0;
  if (!r.Skip(4) || !r.Skip(2 + 32)) return SniResult::kNotTls;  // header, version, random
  if (!r.U8(&v) || !r.Skip(v)) return SniResult::kNotTls;        // session id
  if (!r.U16(&v) || !r.Skip(v)) return SniResult::kNotTls;       // cipher suites
  if (!r.U8(&v) || !r.Skip(v)) return SniResult::kNotTls;        // compression
  if (r.left() == 0) return SniResult::kNoSni;                   // no extensions
  Reader exts(nullptr, 0);
  if (!r.U16(&v) || !r.Sub(v, &exts)) return SniResult::kNotTls;
  bool found = false;
  while (exts.left() > 0) {
    size_t type = 0, len = 0;
    Reader body(nullptr, 0);
    if (!exts.U16(&type) || !exts.U16(&len) || !exts.Sub(len, &body)) return SniResult::kNotTls;
    if (type != 0) continue;
    if (found) return SniResult::kNotTls;  // duplicate extension
    Reader list(nullptr, 0);
    if (!body.U16(&v) || !body.Sub(v, &list)) return SniResult::kNotTls;
    size_t name_type = 0, name_len = 0;
    if (!list.U8(&name_type) || name_type != 0 || !list.U16(&name_len) || name_len > list.left() ||
        name_len == 0) {
      return SniResult::kNotTls;
    }
    std::string name(reinterpret_cast<const char*>(list.here()), name_len);
    if (list.left() != name_len) return SniResult::kNotTls;  // exactly one name
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (!name.empty() && name.back() == '.') name.pop_back();
    *sni = std::move(name);
    found = true;
  }
  return found ? SniResult::kFound : SniResult::kNoSni;
}

}  // namespace toani
