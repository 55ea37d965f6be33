// Nodes that move nothing become copies (aliases where the memory plan allows) and stop no
// fusion: a Gather of every index in order, a Cast to the input's own type, an Expand to the
// shape it has. The graph is BERT's padding mask as torch exports it (transformers'
// masking_utils: a Gather of the flattened mask at batch * seq + position, a bool Cast, an And
// with a causal block, an Expand, a Where): 5 kernel launches before, 2 now. The outputs are
// checked against the mask computed here.
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "compiler/compiler.h"
#include "compiler/quant/accuracy.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

constexpr int64_t kB = 2, kS = 5;

HostTensor int64s(const Shape& s, const std::vector<int64_t>& v) {
  HostTensor t(DType::kInt64, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}

struct MaskGraph {
  std::shared_ptr<Plan> plan;
  HostTensor mask, causal;
};

// `indices`: the Gather's indices over the flattened mask (0 .. B*S-1 in order as exported).
Status build_mask(const std::vector<int64_t>& indices, const std::string& device, MaskGraph* m) {
  std::mt19937 rng(3);
  m->mask = HostTensor(DType::kInt64, {kB, kS});
  for (int64_t i = 0; i < m->mask.numel(); ++i) m->mask.as<int64_t>()[i] = rng() % 3 == 0 ? 0 : 1;
  m->causal = HostTensor(DType::kBool, {1, 1, kS, kS});
  for (int64_t i = 0; i < kS; ++i)
    for (int64_t j = 0; j < kS; ++j) m->causal.as<uint8_t>()[i * kS + j] = j <= i;
  GraphBuilder b(17);
  const std::string x = b.input(m->mask);
  Attributes to_bool, axis2, axis0;
  to_bool.set("to", static_cast<int64_t>(DType::kBool));
  axis2.set("axis", int64_t{2});
  axis0.set("axis", int64_t{0});
  const std::string flat = b.node("Flatten", {b.node("Cast", {x}, to_bool)}, axis2);  // [B*S, 1]
  const std::string picked = b.node("Gather", {flat, b.constant(int64s({kB, 1, 1, kS}, indices))}, axis0);
  const std::string shaped = b.node("Reshape", {picked, b.constant(int64s({4}, {kB, 1, 1, kS}))});
  const std::string both = b.node("And", {b.constant(m->causal), b.node("Cast", {shaped}, to_bool)});
  const std::string full = b.node("Expand", {both, b.constant(int64s({4}, {kB, 1, kS, kS}))});
  b.output(b.node("Where", {full, b.constant(scalar_f32(0.f)), b.constant(scalar_f32(-10000.f))}));
  BuildOptions o;
  o.device = device;
  KILN_TRY(b.build(&m->plan, o));
  return Status::ok();
}

// Runs `m`'s plan on `device`.
Status run_on(const MaskGraph& m, const std::string& device, HostTensor* y) {
  std::vector<std::vector<HostTensor>> out;
  KILN_TRY(run_on_samples(m.plan, device, {{{m.plan->tensors[m.plan->inputs[0]].name, m.mask}}}, &out));
  *y = out[0][0];
  return Status::ok();
}

int count(const Plan& p, const std::string& op) {
  int n = 0;
  for (const PlanNode& node : p.nodes) n += node.op == op;
  return n;
}

// The additive mask for flattened mask positions `indices`.
HostTensor expected(const MaskGraph& m, const std::vector<int64_t>& indices) {
  HostTensor y(DType::kFloat32, {kB, 1, kS, kS});
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t i = 0; i < kS; ++i)
      for (int64_t j = 0; j < kS; ++j) {
        const bool keep = m.causal.as<uint8_t>()[i * kS + j] && m.mask.as<int64_t>()[indices[b * kS + j]] != 0;
        y.as<float>()[(b * kS + i) * kS + j] = keep ? 0.f : -10000.f;
      }
  return y;
}

TEST(CopyLowering, PaddingMaskChainIsTwoKernels) {
  std::vector<int64_t> in_order(kB * kS), reversed(kB * kS);
  for (int64_t i = 0; i < kB * kS; ++i) in_order[i] = i, reversed[i] = kB * kS - 1 - i;
  std::vector<std::string> devices{"cpu"};
  if (have_opencl()) devices.push_back("opencl");
  for (const std::string& device : devices) {
    SCOPED_TRACE(device);
    MaskGraph m;
    Status st = build_mask(in_order, device, &m);
    ASSERT_TRUE(st.is_ok()) << st.message();
    // The int64 -> bool Cast, and And + Expand + Where as one program; the Gather, the bool Cast
    // and the Expand are copies.
    EXPECT_EQ(count(*m.plan, "Gather"), 0);
    EXPECT_EQ(count(*m.plan, "Elementwise"), 2);
    HostTensor y;
    st = run_on(m, device, &y);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_TRUE(tensors_close(y, expected(m, in_order), 0, 0));

    // Indices in another order gather: the Gather stays.
    MaskGraph r;
    st = build_mask(reversed, device, &r);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_EQ(count(*r.plan, "Gather"), 1);
    st = run_on(r, device, &y);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_TRUE(tensors_close(y, expected(r, reversed), 0, 0));
  }
}

}  // namespace
}  // namespace kiln::test
