// .npy reading and writing (the `kiln run` input/output format): round trips for every dtype
// numpy shares with kiln, and malformed files refused with a message naming the file.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <string>

#include "runtime/core/npy.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A version-1.0 .npy file with `header` (padded like numpy does) and `payload`.
std::string npy_bytes(const std::string& header, const std::string& payload) {
  std::string h = header;
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>(h.size() >> 8);
  return out + h + payload;
}

TEST(Npy, RoundTripEveryDtypeAndRank) {
  const std::string dir = scratch_dir("npy_roundtrip");
  std::mt19937 rng(3);
  const DType dtypes[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt64,
                          DType::kInt32,   DType::kInt16,   DType::kInt8,    DType::kUInt8,
                          DType::kBool,    DType::kUInt16,  DType::kUInt32,  DType::kUInt64};
  const Shape shapes[] = {{}, {1}, {7}, {2, 3}, {2, 1, 4}, {0}, {3, 0, 2}, {1, 1, 1, 1, 5}};
  for (DType dt : dtypes) {
    for (const Shape& s : shapes) {
      HostTensor t(dt, s);
      for (auto& b : t.bytes()) b = static_cast<uint8_t>(rng());
      if (dt == DType::kBool)
        for (auto& b : t.bytes()) b &= 1;
      const std::string path = dir + "/t.npy";
      ASSERT_TRUE(write_npy(path, t).is_ok());
      HostTensor u;
      Status st = read_npy(path, &u);
      ASSERT_TRUE(st.is_ok()) << dtype_name(dt) << " " << shape_str(s) << ": " << st.message();
      EXPECT_EQ(u.dtype(), dt);
      EXPECT_EQ(u.shape(), s);
      EXPECT_EQ(u.bytes(), t.bytes()) << dtype_name(dt) << " " << shape_str(s);
    }
  }
}

TEST(Npy, WrittenHeaderIsWhatNumpyWrites) {
  const std::string dir = scratch_dir("npy_header");
  HostTensor t(DType::kFloat32, {2, 3});
  ASSERT_TRUE(write_npy(dir + "/a.npy", t).is_ok());
  std::ifstream f(dir + "/a.npy", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 64u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t hlen = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
  EXPECT_EQ((10 + hlen) % 64, 0u);  // data starts 64-byte aligned
  const std::string header = bytes.substr(10, hlen);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (2, 3)"), std::string::npos) << header;
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(bytes.size(), 10 + hlen + 24);
  // 1-d shapes need numpy's trailing comma.
  HostTensor v(DType::kInt64, {5});
  ASSERT_TRUE(write_npy(dir + "/b.npy", v).is_ok());
  std::ifstream g(dir + "/b.npy", std::ios::binary);
  std::string b2((std::istreambuf_iterator<char>(g)), std::istreambuf_iterator<char>());
  EXPECT_NE(b2.find("'shape': (5,)"), std::string::npos);
}

TEST(Npy, ReadsNumpyVariants) {
  const std::string dir = scratch_dir("npy_variants");
  // Native-order descr, keys in another order, no spaces, version 2.0 header.
  write_file(dir + "/a.npy", npy_bytes("{'shape':(2,),'fortran_order':False,'descr':'=i4'}",
                                       std::string("\x01\0\0\0\x02\0\0\0", 8)));
  HostTensor t;
  Status st = read_npy(dir + "/a.npy", &t);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(t.dtype(), DType::kInt32);
  EXPECT_EQ(t.shape(), (Shape{2}));
  EXPECT_EQ(t.as<int32_t>()[1], 2);

  std::string h = "{'descr': '<f8', 'fortran_order': False, 'shape': (), }";
  while ((12 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string v2("\x93NUMPY\x02\x00", 8);
  const uint32_t len = static_cast<uint32_t>(h.size());
  v2.append(reinterpret_cast<const char*>(&len), 4);
  const double x = 1.5;
  v2 += h + std::string(reinterpret_cast<const char*>(&x), 8);
  write_file(dir + "/b.npy", v2);
  st = read_npy(dir + "/b.npy", &t);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(t.shape(), Shape{});
  EXPECT_EQ(t.as<double>()[0], 1.5);
}

struct BadNpy {
  const char* name;
  std::string bytes;
  StatusCode code;
  const char* expect;
};

TEST(Npy, MalformedFilesAreRefusedNamingTheFile) {
  const std::string dir = scratch_dir("npy_bad");
  const std::string ok_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  const std::string full = npy_bytes(ok_header, std::string(16, '\0'));
  const BadNpy cases[] = {
      {"empty", "", StatusCode::kInvalidArgument, "is not a .npy file"},
      {"text", "hello world, not numpy", StatusCode::kInvalidArgument, "is not a .npy file"},
      {"magic_only", std::string("\x93NUMPY", 6), StatusCode::kInvalidArgument, "is not a .npy file"},
      {"version9", std::string("\x93NUMPY\x09\x00\x10\x00", 10), StatusCode::kInvalidArgument,
       "unsupported .npy version 9"},
      {"no_header_len", std::string("\x93NUMPY\x01\x00", 8), StatusCode::kInvalidArgument, "bad .npy header"},
      {"truncated_header", full.substr(0, 30), StatusCode::kInvalidArgument, "truncated .npy header"},
      {"truncated_data", full.substr(0, full.size() - 1), StatusCode::kInvalidArgument,
       "shorter than its shape 2x2"},
      {"no_data", full.substr(0, full.size() - 16), StatusCode::kInvalidArgument, "shorter than its shape"},
      {"big_endian", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", std::string(8, '\0')),
       StatusCode::kUnsupported, "'>f4' is not supported"},
      {"string_dtype", npy_bytes("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", std::string(20, '\0')),
       StatusCode::kUnsupported, "'<U5' is not supported"},
      {"object_dtype", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')),
       StatusCode::kUnsupported, "is not supported"},
      {"fortran", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0')),
       StatusCode::kUnsupported, "Fortran-order"},
      {"no_shape", npy_bytes("{'descr': '<f4', 'fortran_order': False, }", std::string(4, '\0')),
       StatusCode::kInvalidArgument, "has no shape"},
      {"bad_dim", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", std::string(16, '\0')),
       StatusCode::kInvalidArgument, "bad shape"},
      {"negative_dim", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", std::string(16, '\0')),
       StatusCode::kInvalidArgument, "bad shape"},
      // Would be terabytes: must be refused before anything is allocated.
      {"huge_dims", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999, 999999999999), }", ""),
       StatusCode::kInvalidArgument, "shorter than its shape"},
      {"huge_1d", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999,), }", std::string(64, '\0')),
       StatusCode::kInvalidArgument, "shorter than its shape"},
  };
  for (const BadNpy& c : cases) {
    const std::string path = dir + "/" + c.name + ".npy";
    write_file(path, c.bytes);
    HostTensor t;
    Status st = read_npy(path, &t);
    EXPECT_EQ(st.code(), c.code) << c.name << ": " << st.message();
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.name << ": " << st.message();
    EXPECT_NE(st.message().find(path), std::string::npos) << c.name << ": " << st.message();
  }
  HostTensor t;
  Status st = read_npy(dir + "/does_not_exist.npy", &t);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("does_not_exist.npy"), std::string::npos);
}

TEST(Npy, RandomDamageNeverCrashes) {
  const std::string dir = scratch_dir("npy_fuzz");
  HostTensor t(DType::kFloat32, {3, 4});
  ASSERT_TRUE(write_npy(dir + "/good.npy", t).is_ok());
  std::ifstream f(dir + "/good.npy", std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::mt19937 rng(11);
  for (int iter = 0; iter < 1000; ++iter) {
    std::string bad = good;
    const size_t header_end = 10 + 118;  // damage mostly the header, where parsing happens
    for (int e = 0; e < 1 + static_cast<int>(rng() % 3); ++e)
      bad[rng() % std::min(bad.size(), header_end)] = static_cast<char>(rng());
    if (rng() % 4 == 0) bad.resize(rng() % bad.size());
    write_file(dir + "/bad.npy", bad);
    HostTensor u;
    Status st = read_npy(dir + "/bad.npy", &u);
    if (!st.is_ok()) {
      EXPECT_FALSE(st.message().empty());
    }
  }
}

}  // namespace
}  // namespace kiln::test
