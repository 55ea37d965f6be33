#include "runtime/core/npy.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "runtime/core/file_io.h"
#include "runtime/core/text.h"

namespace kiln {
namespace {
struct DescrMap {
  DType dtype;
  const char* descr;
};
constexpr DescrMap kDescrs[] = {
    {DType::kFloat32, "<f4"}, {DType::kFloat64, "<f8"}, {DType::kFloat16, "<f2"},
    {DType::kInt64, "<i8"},   {DType::kInt32, "<i4"},   {DType::kInt16, "<i2"},
    {DType::kInt8, "|i1"},    {DType::kUInt8, "|u1"},   {DType::kBool, "|b1"},
    {DType::kUInt16, "<u2"},  {DType::kUInt32, "<u4"},  {DType::kUInt64, "<u8"},
};

// Value of `key` in the header dict, e.g. 'descr': '<f4' → <f4.
std::string dict_value(const std::string& h, const std::string& key) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t colon = h.find(':', k);
  if (colon == std::string::npos) return "";
  size_t start = h.find_first_not_of(" ", colon + 1);
  if (start == std::string::npos) return "";
  if (h[start] == '\'') {
    size_t end = h.find('\'', start + 1);
    return end == std::string::npos ? "" : h.substr(start + 1, end - start - 1);
  }
  if (h[start] == '(') {
    size_t end = h.find(')', start);
    return end == std::string::npos ? "" : h.substr(start, end - start + 1);
  }
  size_t end = h.find_first_of(",}", start);
  return h.substr(start, end - start);
}

// An empty array with huge other dims ([0, 2^40, 2^40]) needs no data but would overflow the
// int64 element counts and strides kernels compute: bounded like plan tensors (2^48 elements of
// the non-empty dims).
Status check_extent(const Shape& shape, const std::string& what) {
  uint64_t nonzero = 1;
  for (int64_t d : shape) {
    if (d == 0) continue;
    if (nonzero > (uint64_t{1} << 48) / static_cast<uint64_t>(d))
      return invalid_argument(what + ": shape " + shape_str(shape) + " is too large");
    nonzero *= static_cast<uint64_t>(d);
  }
  return Status::ok();
}

// Data bytes of `shape`, or UINT64_MAX when they exceed `available` (checked without overflow).
uint64_t data_bytes(DType dt, const Shape& shape, uint64_t available) {
  uint64_t need = dtype_size(dt);
  for (int64_t d : shape)
    if (d == 0) return 0;  // an empty array needs no data, whatever the other dims say
  for (int64_t d : shape)
    need = need > available / static_cast<uint64_t>(d) ? UINT64_MAX : need * static_cast<uint64_t>(d);
  return need;
}

}  // namespace

std::string npy_descr(DType t) {
  for (const auto& d : kDescrs)
    if (d.dtype == t) return d.descr;
  return "";
}

Status read_npy(const std::string& path, HostTensor* out, const NpyAccept& accept) {
  InputFile f;
  KILN_TRY(InputFile::open(path, ".npy file", &f));
  const std::string what = "'" + path + "'";
  std::vector<uint8_t> head(static_cast<size_t>(std::min<uint64_t>(f.size(), kNpyMaxHeader + 12)));
  KILN_TRY(f.read_at(0, head.data(), head.size()));
  DType dt;
  Shape shape;
  size_t at;
  KILN_TRY(parse_npy_header(head.data(), head.size(), what, &dt, &shape, &at));
  // Only what the header justifies, and only once the caller accepts the shape.
  const uint64_t need = data_bytes(dt, shape, f.size() - at);
  if (need > f.size() - at)
    return invalid_argument(what + ": file is shorter than its shape " + shape_str(shape) + " needs");
  KILN_TRY(check_extent(shape, what));
  if (accept) KILN_TRY(accept(dt, shape));
  HostTensor t(dt, shape);
  if (t.size_bytes()) KILN_TRY(f.read_at(at, t.data(), t.size_bytes()));
  *out = std::move(t);
  return Status::ok();
}

Status parse_npy(const uint8_t* data, size_t size, const std::string& what, HostTensor* out) {
  DType dt;
  Shape shape;
  size_t at;
  KILN_TRY(parse_npy_header(data, size, what, &dt, &shape, &at));
  // Check the shape against the bytes actually present before allocating, so a corrupted
  // header cannot ask for terabytes (or overflow the element count).
  if (data_bytes(dt, shape, size - at) > size - at)
    return invalid_argument(what + ": file is shorter than its shape " + shape_str(shape) + " needs");
  KILN_TRY(check_extent(shape, what));
  HostTensor t(dt, shape);
  if (t.size_bytes()) std::memcpy(t.data(), data + at, t.size_bytes());
  *out = std::move(t);
  return Status::ok();
}

Status parse_npy_header(const uint8_t* data, size_t size, const std::string& what, DType* dtype, Shape* shape_out,
                        size_t* data_offset) {
  if (size < 8 || std::memcmp(data, "\x93NUMPY", 6) != 0) return invalid_argument(what + " is not a .npy file");
  if (size < 10) return invalid_argument(what + ": bad .npy header");
  const int major = data[6];
  uint32_t hlen = 0;
  size_t at = 0;
  if (major == 1) {
    hlen = static_cast<uint32_t>(data[8]) | static_cast<uint32_t>(data[9]) << 8;
    at = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return invalid_argument(what + ": truncated .npy header");
    std::memcpy(&hlen, data + 8, 4);
    at = 12;
  } else {
    return invalid_argument(what + ": unsupported .npy version " + std::to_string(major));
  }
  if (hlen > kNpyMaxHeader || hlen > size - at) return invalid_argument(what + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(data + at), hlen);
  at += hlen;

  const std::string descr = dict_value(header, "descr");
  DType dt = DType::kUndefined;
  for (const auto& d : kDescrs)
    if (descr == d.descr || (descr.size() == 3 && descr[0] == '=' && descr.substr(1) == std::string(d.descr).substr(1)))
      dt = d.dtype;
  if (dt == DType::kUndefined)
    return unsupported(what + ": numpy dtype '" + clip_text(descr) + "' is not supported (big-endian or unknown)");
  if (dict_value(header, "fortran_order").find("True") != std::string::npos)
    return unsupported(what + ": Fortran-order arrays are not supported; save with np.ascontiguousarray");
  std::string shape_text = dict_value(header, "shape");
  if (shape_text.size() < 2) return invalid_argument(what + ": .npy header has no shape");
  Shape shape;
  std::string inner = shape_text.substr(1, shape_text.size() - 2);
  size_t pos = 0;
  while (pos < inner.size()) {
    size_t end = inner.find(',', pos);
    if (end == std::string::npos) end = inner.size();
    std::string d = inner.substr(pos, end - pos);
    d.erase(0, d.find_first_not_of(' '));
    d.erase(d.find_last_not_of(' ') + 1);
    if (!d.empty()) {
      if (d.find_first_not_of("0123456789") != std::string::npos || d.size() > 12)
        return invalid_argument(what + ": bad shape " + clip_text(shape_text));
      shape.push_back(std::stoll(d));
    }
    pos = end + 1;
  }
  if (shape.size() > 16) return invalid_argument(what + ": rank " + std::to_string(shape.size()) + " is above 16");
  *dtype = dt;
  *shape_out = std::move(shape);
  *data_offset = at;
  return Status::ok();
}

Status write_npy(const std::string& path, const HostTensor& t) {
  const std::string descr = npy_descr(t.dtype());
  if (descr.empty()) return unsupported("cannot write dtype " + dtype_name(t.dtype()) + " to .npy");
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) shape += std::to_string(t.shape()[i]) + ", ";
  if (t.shape().size() > 1) shape.erase(shape.size() - 2);
  else if (t.shape().size() == 1) shape.erase(shape.size() - 1);
  shape += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) return io_error("cannot write '" + path + "': " + last_os_error());
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t hlen = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&hlen), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.size_bytes()));
  if (!f) return io_error("error writing '" + path + "': " + last_os_error());
  return Status::ok();
}

}  // namespace kiln
