#include "compiler/quant/npz.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/core/file_io.h"
#include "runtime/core/text.h"
#include "runtime/core/npy.h"

namespace kiln {
namespace {

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) { return static_cast<uint32_t>(u16(p)) | static_cast<uint32_t>(u16(p + 2)) << 16; }
uint64_t u64(const uint8_t* p) { return static_cast<uint64_t>(u32(p)) | static_cast<uint64_t>(u32(p + 4)) << 32; }

// Raw deflate (zip method 8) into exactly `out_size` bytes. The buffer grows with the data
// actually produced, so a header that claims gigabytes costs nothing until they inflate.
bool inflate_raw(const uint8_t* in, size_t in_size, std::vector<uint8_t>* out, size_t out_size) {
  out->clear();
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return false;
  zs.next_in = const_cast<Bytef*>(in);
  zs.avail_in = static_cast<uInt>(in_size);
  int rc = Z_OK;
  while (rc == Z_OK) {
    const size_t have = out->size();
    const size_t grow = std::min<size_t>(out_size + 1 - have, std::max<size_t>(have, 1 << 16));
    if (grow == 0) break;
    out->resize(have + grow);
    zs.next_out = out->data() + have;
    zs.avail_out = static_cast<uInt>(grow);
    rc = inflate(&zs, Z_NO_FLUSH);
    out->resize(have + grow - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // input ended early
  }
  const bool ok = rc == Z_STREAM_END && zs.total_out == out_size;
  inflateEnd(&zs);
  return ok;
}

}  // namespace

Status read_npz(const std::string& path, std::map<std::string, HostTensor>* out) {
  std::string file;
  KILN_TRY(read_regular_file(path, ".npz file", UINT64_MAX, &file));
  return parse_npz(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "'" + path + "'", out);
}

Status parse_npz(const uint8_t* d, size_t n, const std::string& what, std::map<std::string, HostTensor>* out) {
  // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
  size_t eocd = std::string::npos;
  for (size_t i = n >= 22 ? n - 22 : 0; n >= 22; --i) {
    if (u32(d + i) == 0x06054b50) {
      eocd = i;
      break;
    }
    if (i == 0 || n - i > 65557) break;
  }
  if (eocd == std::string::npos) return invalid_argument(what + " is not an .npz (zip) archive");
  uint64_t entries = u16(d + eocd + 10), cd_size = u32(d + eocd + 12), cd_off = u32(d + eocd + 16);
  if (cd_off == 0xffffffffu || entries == 0xffff) {  // zip64: locator just before the EOCD
    if (eocd < 20 || u32(d + eocd - 20) != 0x07064b50) return invalid_argument(what + ": broken zip64 archive");
    const uint64_t z64 = u64(d + eocd - 12);
    if (n < 56 || z64 > n - 56 || u32(d + z64) != 0x06064b50) return invalid_argument(what + ": broken zip64 archive");
    entries = u64(d + z64 + 32);
    cd_size = u64(d + z64 + 40);
    cd_off = u64(d + z64 + 48);
  }
  if (cd_off > n || cd_size > n - cd_off) return invalid_argument(what + ": central directory out of bounds");
  size_t p = cd_off;
  for (uint64_t e = 0; e < entries; ++e) {
    if (p + 46 > cd_off + cd_size || u32(d + p) != 0x02014b50) return invalid_argument(what + ": corrupted zip directory");
    const uint16_t method = u16(d + p + 10);
    uint64_t csize = u32(d + p + 20), usize = u32(d + p + 24), local = u32(d + p + 42);
    const uint16_t name_len = u16(d + p + 28), extra_len = u16(d + p + 30), comment_len = u16(d + p + 32);
    if (p + 46 + name_len + extra_len + comment_len > cd_off + cd_size) return invalid_argument(what + ": corrupted zip directory");
    std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
    // zip64 extra field: the sizes and offset that overflowed 32 bits, in this order.
    const size_t extra_end = p + 46 + name_len + extra_len;
    for (size_t x = p + 46 + name_len; x + 4 <= extra_end;) {
      const uint16_t id = u16(d + x), len = u16(d + x + 2);
      const size_t field_end = std::min<size_t>(x + 4 + len, extra_end);
      size_t v = x + 4;
      if (id == 0x0001) {
        if (usize == 0xffffffffu && v + 8 <= field_end) usize = u64(d + v), v += 8;
        if (csize == 0xffffffffu && v + 8 <= field_end) csize = u64(d + v), v += 8;
        if (local == 0xffffffffu && v + 8 <= field_end) local = u64(d + v);
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    if (n < 30 || local > n - 30 || u32(d + local) != 0x04034b50) return invalid_argument(what + ": corrupted entry '" + clip_text(name) + "'");
    const uint64_t data_at = local + 30 + u16(d + local + 26) + u16(d + local + 28);
    if (data_at > n || csize > n - data_at) return invalid_argument(what + ": entry '" + clip_text(name) + "' is truncated");
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    const std::string member = what + " member '" + clip_text(name) + "'";
    HostTensor t;
    if (method == 0) {
      KILN_TRY(parse_npy(d + data_at, static_cast<size_t>(csize), member, &t));
    } else if (method == 8) {
      // Deflate expands at most ~1032:1: a larger claim is a corrupted (or hostile) header.
      if (usize > (uint64_t{1} << 36) || usize / 1032 > csize + 64) return invalid_argument(member + " is implausibly large");
      std::vector<uint8_t> raw;
      if (!inflate_raw(d + data_at, static_cast<size_t>(csize), &raw, static_cast<size_t>(usize)))
        return invalid_argument(member + ": corrupted compressed data");
      KILN_TRY(parse_npy(raw.data(), raw.size(), member, &t));
    } else {
      return unsupported(member + ": zip compression method " + std::to_string(method) + " (use np.savez or np.savez_compressed)");
    }
    (*out)[name] = std::move(t);
  }
  return Status::ok();
}

}  // namespace kiln
