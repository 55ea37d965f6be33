// Little-endian byte encoding for the plan format. ByteReader never reads past its end: every
// read returns false on truncation and the caller turns that into an invalid-plan error.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace kiln {

class ByteWriter {
 public:
  void u8(uint8_t v) { buf_.push_back(v); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void i32(int32_t v) { raw(&v, 4); }
  void i64(int64_t v) { raw(&v, 8); }
  void f32(float v) { raw(&v, 4); }
  void str(const std::string& s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  void raw(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void pad_to(size_t alignment) {
    while (buf_.size() % alignment) buf_.push_back(0);
  }
  size_t size() const { return buf_.size(); }
  std::vector<uint8_t>& bytes() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool u8(uint8_t* v) { return raw(v, 1); }
  bool u32(uint32_t* v) { return raw(v, 4); }
  bool u64(uint64_t* v) { return raw(v, 8); }
  bool i32(int32_t* v) { return raw(v, 4); }
  bool i64(int64_t* v) { return raw(v, 8); }
  bool f32(float* v) { return raw(v, 4); }
  bool str(std::string* s) {
    uint64_t n;
    if (!u64(&n) || n > remaining()) return false;
    s->assign(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return true;
  }
  // Reads an element count and checks that `count * min_elem_bytes` bytes could still follow,
  // so a corrupted count cannot make the caller allocate gigabytes.
  bool count(uint64_t* n, size_t min_elem_bytes) {
    if (!u64(n)) return false;
    return min_elem_bytes == 0 ? *n <= remaining() : *n <= remaining() / min_elem_bytes;
  }
  bool raw(void* out, size_t n) {
    if (n > remaining()) return false;
    std::memcpy(out, p_, n);
    p_ += n;
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

uint32_t crc32(const uint8_t* data, size_t size);

}  // namespace kiln
