// Big-endian integers and length-prefixed fields of the binary keyd frames
// (docs/formats.md §1.1–§1.3): appending them to a frame, and a bounds-checked reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace toani::wire {

inline void PutBE(std::string& out, uint64_t v, int bytes) {
  for (int s = 8 * (bytes - 1); s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
inline void Put8(std::string& out, uint64_t v) { PutBE(out, v, 1); }
inline void Put16(std::string& out, uint64_t v) { PutBE(out, v, 2); }
inline void Put32(std::string& out, uint64_t v) { PutBE(out, v, 4); }
inline void Put64(std::string& out, uint64_t v) { PutBE(out, v, 8); }

// Reads a frame front to back. Every method returns false, and reads nothing, when the
// frame has fewer bytes left than asked for.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool Take(size_t n, std::string_view* out) {
    if (s_.size() - pos_ < n) return false;
    *out = s_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool U8(uint8_t* v) {
    uint64_t x = 0;
    if (!BE(1, &x)) return false;
    *v = static_cast<uint8_t>(x);
    return true;
  }
  bool U16(size_t* v) { return BESize(2, v); }
  bool U32(size_t* v) { return BESize(4, v); }
  bool U64(uint64_t* v) { return BE(8, v); }
  // A field of `len_bytes` length prefix then that many bytes, refused when the length
  // is below `min` or above `max`.
  bool Field(int len_bytes, size_t min, size_t max, std::string_view* out) {
    size_t n = 0;
    const size_t at = pos_;
    if (!BESize(len_bytes, &n) || n < min || n > max || !Take(n, out)) {
      pos_ = at;
      return false;
    }
    return true;
  }
  bool AtEnd() const { return pos_ == s_.size(); }

 private:
  bool BE(int bytes, uint64_t* v) {
    std::string_view b;
    if (!Take(static_cast<size_t>(bytes), &b)) return false;
    *v = 0;
    for (char c : b) *v = (*v << 8) | static_cast<uint8_t>(c);
    return true;
  }
  bool BESize(int bytes, size_t* v) {
    uint64_t x = 0;
    if (!BE(bytes, &x)) return false;
    *v = static_cast<size_t>(x);
    return true;
  }
  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace toani::wire
