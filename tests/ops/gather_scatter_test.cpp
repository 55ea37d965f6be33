// gather_scatter family: GatherElements, GatherND, ScatterElements (and Scatter), ScatterND.
// OpenCL against the CPU on random shapes, axes, batch dims, index dtypes (negative indices
// included), element sizes and reductions; the CPU against the ONNX operator documentation's
// examples (numpy-computed there) and hand-checked reductions; errors name the node.
#include "runtime/core/half.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

template <typename T>
HostTensor tensor(DType dt, const Shape& s, const std::vector<T>& v) {
  HostTensor t(dt, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<T>()[i] = v[i];
  return t;
}
HostTensor f32(const Shape& s, const std::vector<float>& v) { return tensor<float>(DType::kFloat32, s, v); }
HostTensor i64(const Shape& s, const std::vector<int64_t>& v) { return tensor<int64_t>(DType::kInt64, s, v); }

OpSpec spec(const std::string& op, int opset, std::vector<HostTensor> inputs, std::vector<bool> constant = {}) {
  OpSpec s;
  s.op_type = op;
  s.opset = opset;
  s.inputs = std::move(inputs);
  s.constant = constant.empty() ? std::vector<bool>(s.inputs.size(), false) : constant;
  return s;
}

HostTensor run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << s.op_type << ": " << st.message();
  return out.empty() ? HostTensor() : out[0];
}

// random_tensor, with float16 values drawn as float32 and rounded.
HostTensor random_data(DType dt, const Shape& s, std::mt19937& rng, double lo, double hi) {
  if (dt != DType::kFloat16) return random_tensor(dt, s, rng, lo, hi);
  const HostTensor f = random_tensor(DType::kFloat32, s, rng, lo, hi);
  HostTensor h(DType::kFloat16, s);
  for (int64_t i = 0; i < f.numel(); ++i) h.as<uint16_t>()[i] = float_to_half(f.as<float>()[i]);
  return h;
}

// Indices in [-n, n) of `shape`.
HostTensor indices(DType dt, const Shape& shape, int64_t n, std::mt19937& rng) {
  HostTensor t(dt, shape);
  std::uniform_int_distribution<int64_t> u(-n, n - 1);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DType::kInt64) t.as<int64_t>()[i] = u(rng);
    else t.as<int32_t>()[i] = static_cast<int32_t>(u(rng));
  }
  return t;
}

TEST(GatherScatterOps, DocumentationExamples) {
  // GatherElements, axis 1: [[1, 2], [3, 4]] with [[0, 0], [1, 0]] -> [[1, 1], [4, 3]].
  OpSpec ge = spec("GatherElements", 13, {f32({2, 2}, {1, 2, 3, 4}), i64({2, 2}, {0, 0, 1, 0})});
  ge.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(tensors_close(run_cpu(ge), f32({2, 2}, {1, 1, 4, 3}), 0, 0));
  // GatherND, batch_dims 1: data [[[0,1],[2,3]],[[4,5],[6,7]]], indices [[1],[0]] -> [[2,3],[4,5]].
  OpSpec gn = spec("GatherND", 12, {i64({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}), i64({2, 1}, {1, 0})});
  gn.attrs.set("batch_dims", int64_t{1});
  EXPECT_TRUE(tensors_close(run_cpu(gn), i64({2, 2}, {2, 3, 4, 5}), 0, 0));
  // ScatterElements, axis 1, duplicate index with reduction add: [[1,2,3,4,5]] with [[1,1]] and
  // updates [[1.1, 2.1]] -> [[1, 5.2, 3, 4, 5]].
  OpSpec se = spec("ScatterElements", 16, {f32({1, 5}, {1, 2, 3, 4, 5}), i64({1, 2}, {1, 1}), f32({1, 2}, {1.1f, 2.1f})});
  se.attrs.set("axis", int64_t{1});
  se.attrs.set("reduction", std::string("add"));
  EXPECT_TRUE(tensors_close(run_cpu(se), f32({1, 5}, {1, 5.2f, 3, 4, 5}), 1e-6, 0));
  // ScatterND, reduction mul on int64 data (constant folding of shape arithmetic): [1,2,3,4,5,6,7,8]
  // with indices [[4],[3],[1],[7]] and updates [9,10,11,12] -> [1,22,3,40,45,6,7,96].
  OpSpec sn = spec("ScatterND", 16, {i64({8}, {1, 2, 3, 4, 5, 6, 7, 8}), i64({4, 1}, {4, 3, 1, 7}), i64({4}, {9, 10, 11, 12})});
  sn.attrs.set("reduction", std::string("mul"));
  EXPECT_TRUE(tensors_close(run_cpu(sn), i64({8}, {1, 22, 3, 40, 45, 6, 7, 96}), 0, 0));
  // ScatterND max (version 18) with a negative index.
  OpSpec sm = spec("ScatterND", 18, {f32({4}, {1, 5, 3, 0}), i64({2, 1}, {-1, 1}), f32({2}, {2, 4})});
  sm.attrs.set("reduction", std::string("max"));
  EXPECT_TRUE(tensors_close(run_cpu(sm), f32({4}, {1, 5, 3, 2}), 0, 0));
  // Scatter (opset 9-10) is ScatterElements without reduction.
  OpSpec old = spec("Scatter", 10, {f32({3}, {0, 0, 0}), i64({2}, {2, 0}), f32({2}, {7, 8})});
  EXPECT_TRUE(tensors_close(run_cpu(old), f32({3}, {8, 0, 7}), 0, 0));
}

TEST(GatherScatterOps, GathersOpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(81);
  const DType dtypes[] = {DType::kFloat32, DType::kInt64, DType::kUInt8, DType::kFloat16};
  for (int iter = 0; iter < 16; ++iter) {
    const DType dt = dtypes[iter % 4], idt = iter % 3 ? DType::kInt64 : DType::kInt32;
    const int rank = 1 + iter % 4;
    const Shape data = random_shape(rank, rng, 5);
    const int64_t axis = static_cast<int64_t>(rng() % rank);
    Shape is = data;
    for (auto& d : is) d = 1 + static_cast<int64_t>(rng() % d);
    is[axis] = 1 + rng() % 6;  // along axis any count
    OpSpec ge = spec("GatherElements", 13, {random_data(dt, data, rng, -9, 9), indices(idt, is, data[axis], rng)});
    ge.attrs.set("axis", axis - (iter % 2 ? rank : 0));
    EXPECT_TRUE(opencl_matches_cpu(ge, 0, 0)) << "GatherElements " << shape_str(data) << " axis " << axis;

    const int64_t b = static_cast<int64_t>(rng() % rank), k = 1 + static_cast<int64_t>(rng() % (rank - b));
    Shape nd(data.begin(), data.begin() + b);
    nd.push_back(1 + rng() % 3);
    nd.push_back(k);
    HostTensor ind(idt, nd);
    for (int64_t t = 0; t < ind.numel(); ++t) {
      const int64_t n = data[b + t % k];
      const int64_t v = static_cast<int64_t>(rng() % (2 * n)) - n;
      if (idt == DType::kInt64) ind.as<int64_t>()[t] = v;
      else ind.as<int32_t>()[t] = static_cast<int32_t>(v);
    }
    OpSpec gn = spec("GatherND", 13, {random_data(dt, data, rng, -9, 9), ind});
    gn.attrs.set("batch_dims", b);
    EXPECT_TRUE(opencl_matches_cpu(gn, 0, 0)) << "GatherND " << shape_str(data) << " b=" << b << " k=" << k;
  }
}

TEST(GatherScatterOps, ScattersOpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(82);
  const char* reductions[] = {"none", "add", "mul", "max", "min"};
  const DType dtypes[] = {DType::kFloat32, DType::kInt64, DType::kInt32, DType::kFloat32, DType::kUInt8};
  for (int iter = 0; iter < 20; ++iter) {
    const DType dt = dtypes[iter % 5];
    const std::string red = dt == DType::kUInt8 ? "none" : reductions[iter % 5];
    const int rank = 1 + iter % 3;
    const Shape data = random_shape(rank, rng, 6);
    const int64_t axis = static_cast<int64_t>(rng() % rank);
    Shape is = data;
    for (auto& d : is) d = 1 + static_cast<int64_t>(rng() % d);
    is[axis] = 1 + rng() % 8;  // duplicates along axis: applied in order
    OpSpec se = spec("ScatterElements", 18, {random_tensor(dt, data, rng, -4, 4), indices(DType::kInt64, is, data[axis], rng),
                                             random_tensor(dt, is, rng, -4, 4)});
    se.attrs.set("axis", axis);
    se.attrs.set("reduction", red);
    EXPECT_TRUE(opencl_matches_cpu(se, 1e-6, 1e-6)) << "ScatterElements " << red << " " << shape_str(data);

    const int64_t k = 1 + static_cast<int64_t>(rng() % rank);
    Shape nd = {static_cast<int64_t>(1 + rng() % 6), k};
    HostTensor ind(DType::kInt64, nd);
    for (int64_t t = 0; t < ind.numel(); ++t) {
      const int64_t n = data[t % k];
      ind.as<int64_t>()[t] = static_cast<int64_t>(rng() % (2 * n)) - n;
    }
    Shape us = {nd[0]};
    us.insert(us.end(), data.begin() + k, data.end());
    OpSpec sn = spec("ScatterND", 18, {random_tensor(dt, data, rng, -4, 4), ind, random_tensor(dt, us, rng, -4, 4)});
    sn.attrs.set("reduction", red);
    EXPECT_TRUE(opencl_matches_cpu(sn, 1e-6, 1e-6)) << "ScatterND " << red << " " << shape_str(data) << " k=" << k;
  }
}

TEST(GatherScatterOps, Float16Scatter) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(83);
  // float16 data: the plain scatter moves half bytes on OpenCL; add (declined there) runs on
  // the CPU in float32, rounded back: 0.5 + 0.25 + 0.125 is exact in half.
  const HostTensor data = random_data(DType::kFloat16, {6, 4}, rng, -1, 1);
  HostTensor upd(DType::kFloat16, {3, 4});
  for (int64_t i = 0; i < 12; ++i) upd.as<uint16_t>()[i] = float_to_half(i < 4 ? 0.5f : i < 8 ? 0.25f : 0.125f);
  OpSpec none = spec("ScatterND", 16, {data, i64({3, 1}, {5, 0, 5}), upd});
  EXPECT_TRUE(opencl_matches_cpu(none, 0, 0));
  OpSpec add = none;
  add.inputs[0] = HostTensor(DType::kFloat16, {6, 4});  // zeros
  add.attrs.set("reduction", std::string("add"));
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(add, "opencl", &out).is_ok());
  EXPECT_FLOAT_EQ(half_to_float(out[0].as<uint16_t>()[5 * 4]), 0.625f);
  EXPECT_FLOAT_EQ(half_to_float(out[0].as<uint16_t>()[0]), 0.25f);
  EXPECT_FLOAT_EQ(half_to_float(out[0].as<uint16_t>()[4]), 0.0f);
}

TEST(GatherScatterOps, BadIndicesNameTheNode) {
  std::vector<HostTensor> out;
  // At run time (indices are an input): the CPU kernel reports the index and its position.
  OpSpec ge = spec("GatherElements", 13, {f32({2, 2}, {1, 2, 3, 4}), i64({2, 2}, {0, 2, 1, 0})});
  ge.attrs.set("axis", int64_t{1});
  Status st = run_op(ge, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("GatherElements_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("index 2"), std::string::npos) << st.message();
  // At build time (constant indices).
  OpSpec sn = spec("ScatterND", 13, {f32({4}, {1, 2, 3, 4}), i64({1, 1}, {-5}), f32({1}, {9})}, {false, true, false});
  st = run_op(sn, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("ScatterND_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("index -5"), std::string::npos) << st.message();
  // Shapes that do not fit: updates must be indices.shape[:-1] + data.shape[k:].
  OpSpec bad = spec("ScatterND", 13, {f32({4, 2}, {}), i64({3, 1}, {0, 1, 2}), f32({3, 3}, {})});
  st = run_op(bad, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("updates have shape"), std::string::npos) << st.message();
  // reduction max is not defined before version 18.
  OpSpec old = spec("ScatterElements", 16, {f32({2}, {}), i64({1}, {0}), f32({1}, {})});
  old.attrs.set("reduction", std::string("max"));
  st = run_op(old, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("reduction"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
