// einsum family: Einsum. The CPU against direct loops written here for the forms numpy.einsum
// documents (matmul, batched and broadcast over an ellipsis, diagonal, trace, outer product,
// transpose, implicit output, three operands); OpenCL against the CPU on the same equations
// with random data (float32 and float16); bad equations name the node.
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

OpSpec einsum(const std::string& eq, std::vector<HostTensor> inputs) {
  OpSpec s;
  s.op_type = "Einsum";
  s.opset = 12;
  s.constant.assign(inputs.size(), false);
  s.inputs = std::move(inputs);
  s.attrs.set("equation", eq);
  return s;
}

HostTensor run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << s.attrs.get_string("equation", "") << ": " << st.message();
  return out.empty() ? HostTensor() : out[0];
}

float at(const HostTensor& t, std::initializer_list<int64_t> idx) {
  int64_t off = 0;
  size_t d = 0;
  for (int64_t i : idx) off = off * t.shape()[d++] + i;
  return t.as<float>()[off];
}

TEST(EinsumOps, MatchesDirectLoops) {
  std::mt19937 rng(141);
  const HostTensor a = random_tensor(DType::kFloat32, {3, 4}, rng), b = random_tensor(DType::kFloat32, {4, 5}, rng);
  HostTensor mm(DType::kFloat32, {3, 5});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 5; ++k) {
      double s = 0;
      for (int64_t j = 0; j < 4; ++j) s += at(a, {i, j}) * at(b, {j, k});
      mm.as<float>()[i * 5 + k] = static_cast<float>(s);
    }
  EXPECT_TRUE(tensors_close(run_cpu(einsum("ij,jk->ik", {a, b})), mm, 1e-6, 1e-6));
  EXPECT_TRUE(tensors_close(run_cpu(einsum("ij, jk", {a, b})), mm, 1e-6, 1e-6));  // implicit output, spaces
  // Transpose, outer product, full sum.
  HostTensor t(DType::kFloat32, {4, 3}), outer(DType::kFloat32, {3, 4});
  double total = 0;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      t.as<float>()[j * 3 + i] = at(a, {i, j});
      outer.as<float>()[i * 4 + j] = at(a, {i, 0}) * at(b, {j, 0});
      total += at(a, {i, j});
    }
  EXPECT_TRUE(tensors_close(run_cpu(einsum("ij->ji", {a})), t, 0, 0));
  HostTensor a0(DType::kFloat32, {3}), b0(DType::kFloat32, {4});
  for (int64_t i = 0; i < 3; ++i) a0.as<float>()[i] = at(a, {i, 0});
  for (int64_t j = 0; j < 4; ++j) b0.as<float>()[j] = at(b, {j, 0});
  EXPECT_TRUE(tensors_close(run_cpu(einsum("i,j->ij", {a0, b0})), outer, 0, 0));
  HostTensor sum(DType::kFloat32, {});
  sum.as<float>()[0] = static_cast<float>(total);
  EXPECT_TRUE(tensors_close(run_cpu(einsum("ij->", {a})), sum, 1e-6, 1e-6));
  // Diagonal and trace of a square matrix.
  const HostTensor sq = random_tensor(DType::kFloat32, {4, 4}, rng);
  HostTensor diag(DType::kFloat32, {4}), trace(DType::kFloat32, {});
  for (int64_t i = 0; i < 4; ++i) {
    diag.as<float>()[i] = at(sq, {i, i});
    trace.as<float>()[0] += at(sq, {i, i});
  }
  EXPECT_TRUE(tensors_close(run_cpu(einsum("ii->i", {sq})), diag, 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(einsum("ii", {sq})), trace, 1e-6, 1e-6));
}

TEST(EinsumOps, EllipsisBroadcastAndThreeOperands) {
  std::mt19937 rng(142);
  // Batch dims [2, 1] and [3] broadcast to [2, 3] under the ellipsis.
  const HostTensor a = random_tensor(DType::kFloat32, {2, 1, 3, 4}, rng), b = random_tensor(DType::kFloat32, {3, 4, 2}, rng);
  HostTensor want(DType::kFloat32, {2, 3, 3, 2});
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t q = 0; q < 3; ++q)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t k = 0; k < 2; ++k) {
          double s = 0;
          for (int64_t j = 0; j < 4; ++j) s += at(a, {p, 0, i, j}) * at(b, {q, j, k});
          want.as<float>()[((p * 3 + q) * 3 + i) * 2 + k] = static_cast<float>(s);
        }
  EXPECT_TRUE(tensors_close(run_cpu(einsum("...ij,...jk->...ik", {a, b})), want, 1e-6, 1e-6));
  // Chained product of three matrices.
  const HostTensor x = random_tensor(DType::kFloat32, {2, 3}, rng), y = random_tensor(DType::kFloat32, {3, 4}, rng),
                   z = random_tensor(DType::kFloat32, {4, 2}, rng);
  HostTensor chain(DType::kFloat32, {2, 2});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t l = 0; l < 2; ++l) {
      double s = 0;
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 4; ++k) s += at(x, {i, j}) * at(y, {j, k}) * at(z, {k, l});
      chain.as<float>()[i * 2 + l] = static_cast<float>(s);
    }
  EXPECT_TRUE(tensors_close(run_cpu(einsum("ij,jk,kl->il", {x, y, z})), chain, 1e-5, 1e-6));
  // Integers (constant folding) take the same path.
  HostTensor ia(DType::kInt64, {2, 2}), ib(DType::kInt64, {2});
  for (int i = 0; i < 4; ++i) ia.as<int64_t>()[i] = i + 1;
  ib.as<int64_t>()[0] = 10, ib.as<int64_t>()[1] = -1;
  const HostTensor iv = run_cpu(einsum("ij,j->i", {ia, ib}));
  ASSERT_EQ(iv.dtype(), DType::kInt64);
  EXPECT_EQ(iv.as<int64_t>()[0], 8);
  EXPECT_EQ(iv.as<int64_t>()[1], 26);
}

TEST(EinsumOps, OpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(143);
  const std::vector<std::pair<std::string, std::vector<Shape>>> cases = {
      {"ij,jk->ik", {{7, 9}, {9, 5}}},
      {"bhqd,bhkd->bhqk", {{2, 3, 6, 8}, {2, 3, 5, 8}}},
      {"...ij,...jk->...ik", {{2, 1, 3, 4}, {3, 4, 2}}},
      {"ii->i", {{6, 6}}},
      {"bii->b", {{3, 5, 5}}},
      {"i,j->ij", {{5}, {7}}},
      {"ijk->kji", {{2, 3, 4}}},
      {"ij,jk,kl->il", {{2, 3}, {3, 4}, {4, 2}}},
  };
  for (const auto& c : cases) {
    std::vector<HostTensor> in;
    for (const Shape& s : c.second) in.push_back(random_tensor(DType::kFloat32, s, rng));
    OpSpec s = einsum(c.first, in);
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-5, 1e-5)) << c.first;
    s.precision = "fp16";
    EXPECT_TRUE(opencl_matches_cpu(s, 2e-3, 2e-3)) << c.first << " fp16";
  }
}

TEST(EinsumOps, BadEquationsNameTheNode) {
  std::vector<HostTensor> out;
  const HostTensor a(DType::kFloat32, {2, 3}), b(DType::kFloat32, {4, 5});
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"ij,jk->ik", "label 'j' has size 3 and 4"},
      {"ij,kl->im", "output label 'm' is in no input"},
      {"ij,jk,kl->il", "3 input terms for 2 inputs"},
      {"i1,jk->ik", "has the character '1'"},
  };
  for (const auto& [eq, msg] : bad) {
    Status st = run_op(einsum(eq, {a, b}), "cpu", &out);
    ASSERT_FALSE(st.is_ok()) << eq;
    EXPECT_NE(st.message().find("Einsum_node"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(msg), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace kiln::test
