// Plan file format: round trip, and every kind of damage refused as kInvalidPlan with a message
// saying what is wrong, never a crash. The plans here are hand-built so every field and every
// attribute kind is covered, plus one compiled from a committed model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "runtime/plan/byte_io.h"
#include "runtime/plan/plan_format.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

// A small but complete plan: an input, two constants in the weights section, three
// activations, nodes with every attribute kind, a kernel source and segments.
Plan rich_plan() {
  Plan p;
  p.writer_version = "kiln test";
  p.model_name = "rich";
  p.target.kind = "opencl";
  p.target.name = "test device";
  p.target.vendor = "test vendor";
  p.target.driver_version = "1.2.3";
  p.target.opencl_c_version = "OpenCL C 1.2";
  p.target.extensions = {"cl_khr_fp64", "cl_khr_int64_base_atomics"};
  p.target.global_mem_bytes = 1ull << 32;
  p.target.max_alloc_bytes = 1ull << 30;
  p.target.local_mem_bytes = 65536;
  p.target.compute_units = 8;
  p.target.device_type = 4;  // CL_DEVICE_TYPE_GPU
  p.required_caps = {"opencl", "cl_khr_fp64"};

  auto tensor = [&](const std::string& name, DType dt, Shape s, TensorKind k) {
    PlanTensor t;
    t.name = name;
    t.dtype = dt;
    t.shape = std::move(s);
    t.kind = k;
    p.tensors.push_back(t);
    return static_cast<int32_t>(p.tensors.size() - 1);
  };
  const int32_t x = tensor("x", DType::kFloat32, {2, 3}, TensorKind::kInput);
  const int32_t c0 = tensor("w0", DType::kFloat32, {2, 3}, TensorKind::kConstant);
  const int32_t c1 = tensor("w1", DType::kInt64, {2}, TensorKind::kConstant);
  const int32_t a0 = tensor("a0", DType::kFloat32, {2, 3}, TensorKind::kActivation);
  const int32_t a1 = tensor("a1", DType::kFloat32, {3, 2}, TensorKind::kActivation);
  const int32_t y = tensor("y", DType::kFloat32, {6}, TensorKind::kActivation);
  // Weights: each constant 64-byte aligned, as the compiler lays them out.
  p.tensors[c0].weight_offset = 0;
  p.tensors[c0].weight_bytes = 24;
  p.tensors[c1].weight_offset = 64;
  p.tensors[c1].weight_bytes = 16;
  p.weights.assign(80, 0);
  for (size_t i = 0; i < p.weights.size(); ++i) p.weights[i] = static_cast<uint8_t>(i * 7 + 1);

  PlanNode n0;
  n0.name = "add0";
  n0.op = "Add";
  n0.inputs = {x, c0};
  n0.outputs = {a0};
  n0.backend = Backend::kOpenCL;
  n0.kernel = "opencl:add";
  n0.attrs.set("i", int64_t{-7});
  n0.attrs.set("f", 2.5f);
  n0.attrs.set("s", std::string("NOTSET"));
  n0.attrs.set("is", std::vector<int64_t>{1, -2, 3});
  n0.attrs.set("fs", std::vector<float>{0.5f, -1.0f});
  auto t = std::make_shared<HostTensor>(DType::kInt32, Shape{3});
  t->as<int32_t>()[0] = 4;
  t->as<int32_t>()[1] = 5;
  t->as<int32_t>()[2] = 6;
  n0.attrs.set("t", std::shared_ptr<const HostTensor>(t));
  n0.fused = {"add0", "relu0"};
  PlanNode n1;
  n1.name = "reshape1";
  n1.op = "Reshape";
  n1.inputs = {a0, -1};
  n1.outputs = {a1};
  n1.backend = Backend::kCpu;
  n1.kernel = "cpu:Reshape";
  PlanNode n2;
  n2.name = "reshape2";
  n2.op = "Reshape";
  n2.inputs = {a1, c1};
  n2.outputs = {y};
  n2.backend = Backend::kCpu;
  n2.kernel = "cpu:Reshape";
  p.nodes = {n0, n1, n2};
  p.inputs = {x};
  p.outputs = {y};
  p.segments = compute_segments(p);
  p.kernel_sources["add"] = "__kernel void add(__global float* a) { a[0] += 1.0f; }\n";
  p.kernel_sources["empty"] = "";
  // Dynamic: x's dim 0 is N in [1, 2] (stored at the max, 2); expressions in u = N - 1.
  p.dyn_vars = {DynVar{"N", 1, 2, 2}};
  p.dyn_inputs = {DynInputDim{x, 0, 0}};
  p.dyn_exprs = {DynExpr{DynTarget::kTensorDim, x, "", 0, {{0, 1}, {1, 1}}},
                 DynExpr{DynTarget::kTensorDim, a0, "", 0, {{0, 1}, {1, 1}}},
                 DynExpr{DynTarget::kTensorDim, a1, "", 1, {{0, 1}, {1, 1}}},
                 DynExpr{DynTarget::kTensorDim, y, "", 0, {{0, 3}, {1, 3}}},
                 DynExpr{DynTarget::kAttrInt, 0, "i", 0, {{0, -8}, {1, 1}}},
                 DynExpr{DynTarget::kAttrInts, 0, "is", 0, {{1, 1}}}};
  return p;
}

std::vector<uint8_t> meta_section(const std::vector<uint8_t>& file, uint64_t* offset) {
  // The table follows the 64-byte header; META is written first.
  uint64_t off, len;
  std::memcpy(&off, file.data() + 64 + 8, 8);
  std::memcpy(&len, file.data() + 64 + 16, 8);
  *offset = off;
  return std::vector<uint8_t>(file.begin() + off, file.begin() + off + len);
}

TEST(PlanFormat, RoundTripKeepsEveryField) {
  // rich_plan's made-up ops exercise every field of the format; the op rules would refuse them.
  const Plan p = rich_plan();
  ASSERT_TRUE(verify_plan_structure(p).is_ok()) << verify_plan_structure(p).message();
  EXPECT_EQ(verify_plan(p).code(), StatusCode::kUnsupported);
  const std::vector<uint8_t> bytes = serialize_plan(p);
  Plan q;
  EXPECT_EQ(parse_plan(bytes.data(), bytes.size(), &q).code(), StatusCode::kUnsupported);
  Status st = decode_plan(bytes.data(), bytes.size(), &q);
  ASSERT_TRUE(st.is_ok()) << st.message();

  EXPECT_EQ(q.format_version, kPlanFormatVersion);
  EXPECT_EQ(q.writer_version, p.writer_version);
  EXPECT_EQ(q.model_name, p.model_name);
  EXPECT_EQ(q.target.kind, p.target.kind);
  EXPECT_EQ(q.target.name, p.target.name);
  EXPECT_EQ(q.target.vendor, p.target.vendor);
  EXPECT_EQ(q.target.driver_version, p.target.driver_version);
  EXPECT_EQ(q.target.opencl_c_version, p.target.opencl_c_version);
  EXPECT_EQ(q.target.extensions, p.target.extensions);
  EXPECT_EQ(q.target.global_mem_bytes, p.target.global_mem_bytes);
  EXPECT_EQ(q.target.max_alloc_bytes, p.target.max_alloc_bytes);
  EXPECT_EQ(q.target.local_mem_bytes, p.target.local_mem_bytes);
  EXPECT_EQ(q.target.compute_units, p.target.compute_units);
  EXPECT_EQ(q.target.device_type, p.target.device_type);
  ASSERT_EQ(q.dyn_vars.size(), 1u);
  EXPECT_EQ(q.dyn_vars[0].name, "N");
  EXPECT_EQ(q.dyn_vars[0].min, 1);
  EXPECT_EQ(q.dyn_vars[0].max, 2);
  ASSERT_EQ(q.dyn_inputs.size(), 1u);
  EXPECT_EQ(q.dyn_inputs[0].tensor, p.dyn_inputs[0].tensor);
  ASSERT_EQ(q.dyn_exprs.size(), p.dyn_exprs.size());
  for (size_t i = 0; i < p.dyn_exprs.size(); ++i) {
    EXPECT_EQ(q.dyn_exprs[i].target, p.dyn_exprs[i].target);
    EXPECT_EQ(q.dyn_exprs[i].index, p.dyn_exprs[i].index);
    EXPECT_EQ(q.dyn_exprs[i].attr, p.dyn_exprs[i].attr);
    EXPECT_EQ(q.dyn_exprs[i].pos, p.dyn_exprs[i].pos);
    ASSERT_EQ(q.dyn_exprs[i].terms.size(), p.dyn_exprs[i].terms.size());
    for (size_t j = 0; j < p.dyn_exprs[i].terms.size(); ++j) {
      EXPECT_EQ(q.dyn_exprs[i].terms[j].vars, p.dyn_exprs[i].terms[j].vars);
      EXPECT_EQ(q.dyn_exprs[i].terms[j].coef, p.dyn_exprs[i].terms[j].coef);
    }
  }
  EXPECT_EQ(q.required_caps, p.required_caps);
  ASSERT_EQ(q.tensors.size(), p.tensors.size());
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    EXPECT_EQ(q.tensors[i].name, p.tensors[i].name);
    EXPECT_EQ(q.tensors[i].dtype, p.tensors[i].dtype);
    EXPECT_EQ(q.tensors[i].shape, p.tensors[i].shape);
    EXPECT_EQ(q.tensors[i].kind, p.tensors[i].kind);
    EXPECT_EQ(q.tensors[i].weight_offset, p.tensors[i].weight_offset);
    EXPECT_EQ(q.tensors[i].weight_bytes, p.tensors[i].weight_bytes);
  }
  ASSERT_EQ(q.nodes.size(), p.nodes.size());
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    EXPECT_EQ(q.nodes[i].name, p.nodes[i].name);
    EXPECT_EQ(q.nodes[i].op, p.nodes[i].op);
    EXPECT_EQ(q.nodes[i].inputs, p.nodes[i].inputs);
    EXPECT_EQ(q.nodes[i].outputs, p.nodes[i].outputs);
    EXPECT_EQ(q.nodes[i].backend, p.nodes[i].backend);
    EXPECT_EQ(q.nodes[i].kernel, p.nodes[i].kernel);
    EXPECT_EQ(q.nodes[i].fused, p.nodes[i].fused);
    EXPECT_EQ(q.nodes[i].attrs.to_string(), p.nodes[i].attrs.to_string());
  }
  const Attributes& a = q.nodes[0].attrs;
  EXPECT_EQ(a.get_int("i", 0), -7);
  EXPECT_EQ(a.get_float("f", 0), 2.5f);
  EXPECT_EQ(a.get_string("s", ""), "NOTSET");
  EXPECT_EQ(a.get_ints("is"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(a.get_floats("fs"), (std::vector<float>{0.5f, -1.0f}));
  ASSERT_TRUE(a.get_tensor("t"));
  EXPECT_EQ(a.get_tensor("t")->dtype(), DType::kInt32);
  EXPECT_EQ(a.get_tensor("t")->as<int32_t>()[2], 6);
  EXPECT_EQ(q.inputs, p.inputs);
  EXPECT_EQ(q.outputs, p.outputs);
  ASSERT_EQ(q.segments.size(), p.segments.size());
  for (size_t i = 0; i < p.segments.size(); ++i) {
    EXPECT_EQ(q.segments[i].backend, p.segments[i].backend);
    EXPECT_EQ(q.segments[i].first_node, p.segments[i].first_node);
    EXPECT_EQ(q.segments[i].end_node, p.segments[i].end_node);
    EXPECT_EQ(q.segments[i].copy_in, p.segments[i].copy_in);
  }
  EXPECT_EQ(q.kernel_sources, p.kernel_sources);
  EXPECT_EQ(q.weights, p.weights);
  // Encoding is a pure function of the plan: re-serializing gives identical bytes.
  EXPECT_EQ(serialize_plan(q), bytes);
}

TEST(PlanFormat, WeightsSectionIs64ByteAligned) {
  const std::vector<uint8_t> bytes = serialize_plan(rich_plan());
  uint64_t off;
  std::memcpy(&off, bytes.data() + 64 + 24 + 8, 8);  // second table entry: WEIGHTS
  uint32_t kind;
  std::memcpy(&kind, bytes.data() + 64 + 24, 4);
  EXPECT_EQ(kind, static_cast<uint32_t>(PlanSection::kWeights));
  EXPECT_EQ(off % kWeightAlignment, 0u);
}

TEST(PlanFormat, CompiledModelRoundTrips) {
  Plan p;
  BuildOptions opts;
  opts.device = "cpu";
  Status st = build_plan_from_file(model_path("copy_two_inputs.onnx"), opts, &p);
  ASSERT_TRUE(st.is_ok()) << st.message();
  const std::vector<uint8_t> bytes = serialize_plan(p);
  Plan q;
  st = parse_plan(bytes.data(), bytes.size(), &q);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(serialize_plan(q), bytes);
  EXPECT_EQ(q.target.kind, "cpu");
  ASSERT_EQ(q.inputs.size(), 2u);
  EXPECT_EQ(q.tensors[q.inputs[0]].name, "x");
  EXPECT_EQ(q.tensors[q.inputs[1]].name, "ids");
}

TEST(PlanFormat, EveryTruncationIsRefused) {
  const std::vector<uint8_t> bytes = serialize_plan(rich_plan());
  for (size_t n = 0; n < bytes.size(); ++n) {
    Plan q;
    Status st = parse_plan(bytes.data(), n, &q);
    ASSERT_EQ(st.code(), StatusCode::kInvalidPlan) << "truncated to " << n << " bytes";
    if (n < kPlanHeaderBytes)
      EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
    else
      EXPECT_NE(st.message().find("are present"), std::string::npos) << st.message();
  }
  // Trailing garbage is refused too: the header records the exact size.
  std::vector<uint8_t> padded = bytes;
  padded.push_back(0);
  Plan q;
  EXPECT_EQ(parse_plan(padded.data(), padded.size(), &q).code(), StatusCode::kInvalidPlan);
}

TEST(PlanFormat, EveryFlippedBodyByteIsAChecksumError) {
  const std::vector<uint8_t> bytes = serialize_plan(rich_plan());
  for (size_t i = kPlanHeaderBytes; i < bytes.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::vector<uint8_t> bad = bytes;
      bad[i] ^= mask;
      Plan q;
      Status st = parse_plan(bad.data(), bad.size(), &q);
      ASSERT_EQ(st.code(), StatusCode::kInvalidPlan) << "byte " << i;
      ASSERT_NE(st.message().find("checksum mismatch"), std::string::npos) << st.message();
    }
  }
}

TEST(PlanFormat, EveryFlippedHeaderByteIsRefused) {
  const std::vector<uint8_t> bytes = serialize_plan(rich_plan());
  for (size_t i = 0; i < kPlanHeaderBytes; ++i) {
    std::vector<uint8_t> bad = bytes;
    bad[i] ^= 0x10;
    Plan q;
    Status st = parse_plan(bad.data(), bad.size(), &q);
    EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << "header byte " << i;
    EXPECT_FALSE(st.message().empty());
  }
}

TEST(PlanFormat, BadMagic) {
  std::vector<uint8_t> bytes = serialize_plan(rich_plan());
  std::memcpy(bytes.data(), "NOTAPLAN", 8);
  Plan q;
  Status st = parse_plan(bytes.data(), bytes.size(), &q);
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan);
  EXPECT_NE(st.message().find("bad magic"), std::string::npos) << st.message();
  // An ONNX file given by mistake says the same, whatever its size.
  const std::string onnx = std::string("\x08\x08\x12\x09kiln-test", 12) + std::string(100, 'x');
  st = parse_plan(reinterpret_cast<const uint8_t*>(onnx.data()), onnx.size(), &q);
  EXPECT_NE(st.message().find("bad magic"), std::string::npos) << st.message();
}

TEST(PlanFormat, WrongVersionNamesBothVersions) {
  std::vector<uint8_t> bytes = serialize_plan(rich_plan());
  for (uint32_t v : {0u, kPlanFormatVersion - 1, kPlanFormatVersion + 1, 0xffffffffu}) {  // older and newer
    std::memcpy(bytes.data() + 8, &v, 4);
    Plan q;
    Status st = parse_plan(bytes.data(), bytes.size(), &q);
    EXPECT_EQ(st.code(), StatusCode::kInvalidPlan);
    EXPECT_NE(st.message().find("plan format version " + std::to_string(v) + " is not supported"),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("reads version " + std::to_string(kPlanFormatVersion)),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("rebuild"), std::string::npos) << st.message();
  }
}

TEST(PlanFormat, NonZeroReservedHeaderBytesAreRefused) {
  std::vector<uint8_t> bytes = serialize_plan(rich_plan());
  bytes[kPlanHeaderBytes - 1] = 1;
  Plan q;
  Status st = parse_plan(bytes.data(), bytes.size(), &q);
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan);
  EXPECT_NE(st.message().find("reserved"), std::string::npos) << st.message();
}

// Damage that keeps a valid checksum: only verify_plan (and the decoder's own bounds) stand
// between it and the runtime.
struct Damage {
  const char* what;
  void (*apply)(Plan&);
  const char* expect;  // substring of the error
};

const Damage kDamages[] = {
    {"node reads tensor 99", [](Plan& p) { p.nodes[1].inputs[0] = 99; }, "reads tensor index 99"},
    {"node reads tensor -2", [](Plan& p) { p.nodes[1].inputs[0] = -2; }, "reads tensor index -2"},
    {"node writes tensor 1000", [](Plan& p) { p.nodes[0].outputs[0] = 1000; }, "writes tensor index 1000"},
    {"node writes a constant", [](Plan& p) { p.nodes[0].outputs[0] = 1; }, "produced twice"},
    {"tensor produced twice", [](Plan& p) { p.nodes[1].outputs[0] = 3; }, "produced twice"},
    {"read before produced", [](Plan& p) { std::swap(p.nodes[0], p.nodes[1]); }, "before it is produced"},
    {"input index out of range", [](Plan& p) { p.inputs[0] = 42; }, "plan input index 42"},
    {"input is an activation", [](Plan& p) { p.inputs[0] = 3; }, "is not an input tensor"},
    {"output never produced", [](Plan& p) { p.outputs[0] = 77; }, "plan output index 77"},
    {"output index negative", [](Plan& p) { p.outputs[0] = -1; }, "plan output index -1"},
    {"constant outside weights", [](Plan& p) { p.tensors[2].weight_offset = 4096; }, "outside the weights"},
    {"constant size mismatch", [](Plan& p) { p.tensors[1].weight_bytes = 8; }, "outside the weights"},
    {"weights section too short", [](Plan& p) { p.weights.resize(70); }, "outside the weights"},
    {"segment past the end", [](Plan& p) { p.segments[0].end_node = 50; }, "segment node range"},
    {"segment negative", [](Plan& p) { p.segments[0].first_node = -3; }, "segment node range"},
    {"segment transfer out of range", [](Plan& p) { p.segments.back().copy_in.push_back(500); }, "segment transfer"},
    {"overflowing shape",
     [](Plan& p) { p.tensors[5].shape = {int64_t{1} << 40, int64_t{1} << 40}; }, "impossible shape"},
    {"huge input shape",
     [](Plan& p) { p.tensors[0].shape = {int64_t{1} << 62}; }, "impossible shape"},
    {"dynamic dim bound to no input", [](Plan& p) { p.dyn_inputs.clear(); }, "belongs to no input"},
    {"dynamic input dim out of range", [](Plan& p) { p.dyn_inputs[0].dim = 9; }, "dynamic input dim entry"},
    {"dynamic input is an activation", [](Plan& p) { p.dyn_inputs[0].tensor = 3; }, "dynamic input dim entry"},
    {"dynamic range inverted", [](Plan& p) { p.dyn_vars[0].min = 3; }, "bad range"},
    {"expression disagrees with the stored shape", [](Plan& p) { p.dyn_exprs[3].terms[1].coef = 4; }, "disagrees"},
    {"expression on a constant", [](Plan& p) { p.dyn_exprs[1].index = 1; }, "tensor dim out of range"},
    {"expression past the rank", [](Plan& p) { p.dyn_exprs[1].pos = 5; }, "tensor dim out of range"},
    {"expression on an unknown variable", [](Plan& p) { p.dyn_exprs[2].terms[1].vars = 2; }, "unknown dynamic dim"},
    {"expression on a missing attribute", [](Plan& p) { p.dyn_exprs[4].attr = "nope"; }, "missing attribute 'nope'"},
    {"expression on a float attribute", [](Plan& p) { p.dyn_exprs[4].attr = "f"; }, "wrong kind"},
    {"expression past an ints attribute", [](Plan& p) { p.dyn_exprs[5].pos = 3; }, "wrong kind"},
    {"expression on a node out of range", [](Plan& p) { p.dyn_exprs[5].index = 9; }, "node out of range"},
    {"overflowing expression",
     [](Plan& p) { p.dyn_exprs[3].terms = {{1, int64_t{1} << 62}, {1, int64_t{1} << 62}}; }, "disagrees"},
    {"expressions in a static plan", [](Plan& p) { p.dyn_vars.clear(); }, "without dynamic dims"},
};

TEST(PlanFormat, OutOfRangeIndicesWithValidChecksumAreRefused) {
  for (const Damage& d : kDamages) {
    Plan p = rich_plan();
    d.apply(p);
    EXPECT_EQ(verify_plan(p).code(), StatusCode::kInvalidPlan) << d.what;
    const std::vector<uint8_t> bytes = serialize_plan(p);  // writes a valid checksum
    Plan q;
    Status st = parse_plan(bytes.data(), bytes.size(), &q);
    EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << d.what;
    EXPECT_NE(st.message().find(d.expect), std::string::npos) << d.what << ": " << st.message();
  }
}

TEST(PlanFormat, MalformedMetaWithValidChecksumIsRefused) {
  const std::vector<uint8_t> good = serialize_plan(rich_plan());
  uint64_t meta_at;
  const std::vector<uint8_t> meta = meta_section(good, &meta_at);
  // The first META field is the writer version string: a u64 length, then the bytes.
  struct Case {
    const char* what;
    size_t at;
    uint64_t value;
  };
  const Case cases[] = {
      {"string length past the section", 0, 1ull << 40},
      {"string length max", 0, ~0ull},
      {"string length one too long", 0, meta.size()},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> bad = good;
    std::memcpy(bad.data() + meta_at + c.at, &c.value, 8);
    fix_plan_checksum(&bad);
    Plan q;
    Status st = parse_plan(bad.data(), bad.size(), &q);
    EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << c.what;
    EXPECT_NE(st.message().find("graph section is malformed"), std::string::npos)
        << c.what << ": " << st.message();
  }
  // A section table entry pointing outside the file.
  std::vector<uint8_t> bad = good;
  const uint64_t far = bad.size() + 1;
  std::memcpy(bad.data() + 64 + 8, &far, 8);
  fix_plan_checksum(&bad);
  Plan q;
  Status st = parse_plan(bad.data(), bad.size(), &q);
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan);
  EXPECT_NE(st.message().find("outside the file"), std::string::npos) << st.message();
  // An unknown section kind.
  bad = good;
  const uint32_t kind = 99;
  std::memcpy(bad.data() + 64, &kind, 4);
  fix_plan_checksum(&bad);
  st = parse_plan(bad.data(), bad.size(), &q);
  EXPECT_NE(st.message().find("unknown section kind 99"), std::string::npos) << st.message();
  // No META section at all (its entry turned into a second KERNELS one).
  bad = good;
  const uint32_t kernels = static_cast<uint32_t>(PlanSection::kKernels);
  std::memcpy(bad.data() + 64, &kernels, 4);
  fix_plan_checksum(&bad);
  st = parse_plan(bad.data(), bad.size(), &q);
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan);
}

// Random damage with the checksum repaired afterwards, so the decoder sees it. Whatever
// happens, the result is either a clean plan or kInvalidPlan; a decoded plan passes
// verify_plan_structure and re-encodes without trouble.
TEST(PlanFormat, RandomMutationsNeverCrash) {
  const std::vector<uint8_t> good = serialize_plan(rich_plan());
  uint64_t meta_at;
  const std::vector<uint8_t> meta = meta_section(good, &meta_at);
  std::mt19937 rng(12345);
  int refused = 0, accepted = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<uint8_t> bad = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      // Mostly inside META, where the structure is; sometimes anywhere after the header.
      size_t at = (rng() % 4 != 0) ? meta_at + rng() % meta.size()
                                   : kPlanHeaderBytes + rng() % (bad.size() - kPlanHeaderBytes);
      switch (rng() % 4) {
        case 0: bad[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: bad[at] = static_cast<uint8_t>(rng()); break;
        case 2: bad[at] = 0xff; break;
        default: bad[at] = 0; break;
      }
    }
    fix_plan_checksum(&bad);
    Plan q;
    // rich_plan's ops are made up: the structural decoder (the op rules have tests of their own,
    // tests/unit/plan_verifier_test.cpp).
    Status st = decode_plan(bad.data(), bad.size(), &q);
    if (st.is_ok()) {
      ++accepted;
      ASSERT_TRUE(verify_plan_structure(q).is_ok());
      Plan r;
      const std::vector<uint8_t> again = serialize_plan(q);
      ASSERT_TRUE(decode_plan(again.data(), again.size(), &r).is_ok());
    } else {
      ++refused;
      ASSERT_EQ(st.code(), StatusCode::kInvalidPlan) << st.message();
      ASSERT_FALSE(st.message().empty());
    }
  }
  EXPECT_GT(refused, 1000);  // the loop really exercises the error paths
  (void)accepted;
}

TEST(PlanFormat, RandomBytesAreRefused) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 500; ++iter) {
    std::vector<uint8_t> junk(rng() % 512);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (iter % 2 && junk.size() >= 8) std::memcpy(junk.data(), kPlanMagic, 8);
    Plan q;
    EXPECT_EQ(parse_plan(junk.data(), junk.size(), &q).code(), StatusCode::kInvalidPlan);
  }
}

// Shape expressions with floor and ceil divisions (format version 5): evaluation, the round
// trip, and damaged forms refused by the verifier.
TEST(PlanFormat, DynamicDivisionsEvaluate) {
  const std::vector<DynVar> vars = {DynVar{"H", 4, 64, 64}, DynVar{"W", 1, 9, 9}};
  // floor((floor((H-1)/2)+1-1)/2)+1 with u = H - 4: div0 = floor((u+3)/2), div1 = floor(div0/2).
  DynExpr nested{DynTarget::kTensorDim, 0, "", 0, {{1u << 3, 1}, {0, 1}},
                 {DynDiv{false, 2, {{1, 1}, {0, 3}}}, DynDiv{false, 2, {{1u << 2, 1}}}}};
  for (int64_t h = 4; h <= 64; ++h) {
    const int64_t at[2] = {h, 1};
    int64_t v;
    ASSERT_TRUE(eval_dyn_expr(vars, nested, at, &v));
    EXPECT_EQ(v, ((h - 1) / 2 + 1 - 1) / 2 + 1) << h;
  }
  // Negative numerators round toward -inf (floor) and +inf (ceil); products of atoms of two vars.
  DynExpr fl{DynTarget::kTensorDim, 0, "", 0, {{1u << 2, 1}}, {DynDiv{false, 4, {{2, 1}, {0, -7}}}}};
  DynExpr ce{DynTarget::kTensorDim, 0, "", 0, {{1u << 2, 1}}, {DynDiv{true, 4, {{2, 1}, {0, -7}}}}};
  DynExpr prod{DynTarget::kTensorDim, 0, "", 0, {{(1u << 2) | (1u << 3), 3}},
               {DynDiv{false, 2, {{1, 1}}}, DynDiv{true, 3, {{2, 1}}}}};
  for (int64_t w = 1; w <= 9; ++w) {
    const int64_t at[2] = {10, w};
    const int64_t n = w - 1 - 7;
    int64_t v;
    ASSERT_TRUE(eval_dyn_expr(vars, fl, at, &v));
    EXPECT_EQ(v, n >= 0 ? n / 4 : -((-n + 3) / 4)) << w;
    ASSERT_TRUE(eval_dyn_expr(vars, ce, at, &v));
    EXPECT_EQ(v, n >= 0 ? (n + 3) / 4 : -(-n / 4)) << w;
    ASSERT_TRUE(eval_dyn_expr(vars, prod, at, &v));
    EXPECT_EQ(v, 3 * (6 / 2) * ((w - 1 + 2) / 3)) << w;
  }
  // Overflow, a zero or negative divisor and atoms out of range fail instead of giving a value.
  const int64_t at[2] = {64, 9};
  int64_t v;
  DynExpr bad = fl;
  bad.divs[0].divisor = 0;
  EXPECT_FALSE(eval_dyn_expr(vars, bad, at, &v));
  bad.divs[0].divisor = -2;
  EXPECT_FALSE(eval_dyn_expr(vars, bad, at, &v));
  bad = fl;
  bad.divs[0].terms = {{2, int64_t{1} << 62}, {2, int64_t{1} << 62}};
  EXPECT_FALSE(eval_dyn_expr(vars, bad, at, &v));
  bad = fl;
  bad.divs[0].terms = {{1u << 2, 1}};  // reads itself
  EXPECT_FALSE(eval_dyn_expr(vars, bad, at, &v));
  bad = fl;
  bad.terms = {{1u << 3, 1}};  // a division that is not there
  EXPECT_FALSE(eval_dyn_expr(vars, bad, at, &v));
}

// rich_plan with its ints attribute "is" = {1, -2, 3} given by divisions of N (u = N - 1 = 1 at
// the max): is[1] = floor(u/2) - 2, is[2] = ceil((floor((u+3)/2)+1)/2) + 1.
Plan plan_with_divisions() {
  Plan p = rich_plan();
  p.dyn_exprs.push_back(DynExpr{DynTarget::kAttrInts, 0, "is", 1, {{2, 1}, {0, -2}}, {DynDiv{false, 2, {{1, 1}}}}});
  p.dyn_exprs.push_back(DynExpr{DynTarget::kAttrInts, 0, "is", 2, {{4, 1}, {0, 1}},
                                {DynDiv{false, 2, {{1, 1}, {0, 3}}}, DynDiv{true, 2, {{2, 1}, {0, 1}}}}});
  return p;
}

TEST(PlanFormat, DynamicDivisionsRoundTrip) {
  const Plan p = plan_with_divisions();
  ASSERT_TRUE(verify_plan_structure(p).is_ok()) << verify_plan_structure(p).message();
  const std::vector<uint8_t> bytes = serialize_plan(p);
  Plan q;
  Status st = decode_plan(bytes.data(), bytes.size(), &q);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(q.dyn_exprs.size(), p.dyn_exprs.size());
  for (size_t i = 0; i < p.dyn_exprs.size(); ++i) {
    EXPECT_TRUE(q.dyn_exprs[i].terms == p.dyn_exprs[i].terms) << i;
    EXPECT_TRUE(q.dyn_exprs[i].divs == p.dyn_exprs[i].divs) << i;
  }
  EXPECT_TRUE(q.dyn_exprs.back().divs[1].ceil);
  // A division kind other than floor (0) and ceil (1) in the bytes is refused: the kind byte of
  // the last expression's last division sits before its divisor (2), its term count (1) and term.
  std::vector<uint8_t> bad = bytes;
  const std::vector<uint8_t> tail = {1, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
  auto it = std::find_end(bad.begin(), bad.end(), tail.begin(), tail.end());
  ASSERT_NE(it, bad.end());
  *it = 2;
  // Re-seal the checksum so the reader's own check of the kind is what refuses it.
  const uint32_t crc = crc32(bad.data() + kPlanHeaderBytes, bad.size() - kPlanHeaderBytes);
  std::memcpy(bad.data() + 24, &crc, 4);
  st = decode_plan(bad.data(), bad.size(), &q);
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan);
}

TEST(PlanFormat, DamagedDivisionsAreRefused) {
  const struct {
    const char* what;
    void (*apply)(Plan&);
    const char* expect;
  } damages[] = {
      {"divisor zero", [](Plan& p) { p.dyn_exprs.back().divs[0].divisor = 0; }, "divides by 0"},
      {"divisor negative", [](Plan& p) { p.dyn_exprs.back().divs[1].divisor = -2; }, "divides by -2"},
      {"division reads itself", [](Plan& p) { p.dyn_exprs.back().divs[0].terms[0].vars = 2; }, "unknown or later atom"},
      {"division reads a later one", [](Plan& p) { p.dyn_exprs.back().divs[0].terms[0].vars = 4; },
       "unknown or later atom"},
      {"term reads a missing division", [](Plan& p) { p.dyn_exprs.back().terms[0].vars = 8; }, "unknown dynamic dim"},
      {"division changes the value at the max", [](Plan& p) { p.dyn_exprs.back().divs[1].ceil = false; }, "disagrees"},
      {"divisor changes the value at the max", [](Plan& p) { p.dyn_exprs.back().divs[0].divisor = 3; }, "disagrees"},
      {"overflowing division",
       [](Plan& p) { p.dyn_exprs.back().divs[0].terms = {{1, int64_t{1} << 62}, {1, int64_t{1} << 62}}; },
       "disagrees"},
      {"too many divisions", [](Plan& p) { p.dyn_exprs.back().divs.resize(kMaxDynDivs + 1, DynDiv{false, 1, {}}); },
       "too large"},
  };
  for (const auto& d : damages) {
    Plan p = plan_with_divisions();
    d.apply(p);
    const Status vs = verify_plan_structure(p);
    EXPECT_EQ(vs.code(), StatusCode::kInvalidPlan) << d.what;
    EXPECT_NE(vs.message().find(d.expect), std::string::npos) << d.what << ": " << vs.message();
    // From bytes: the reader refuses a count past its limits itself, the verifier the rest.
    const std::vector<uint8_t> bytes = serialize_plan(p);
    Plan q;
    Status st = decode_plan(bytes.data(), bytes.size(), &q);
    EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << d.what;
    const bool too_many = std::string(d.expect) == "too large";
    EXPECT_NE(st.message().find(too_many ? "malformed" : d.expect), std::string::npos) << d.what << ": " << st.message();
  }
}

}  // namespace
}  // namespace kiln::test
