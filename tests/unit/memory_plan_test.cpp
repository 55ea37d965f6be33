#include <gtest/gtest.h>

#include <random>

#include "runtime/exec/memory_plan.h"

namespace kiln {
namespace {

// A random DAG plan: each node reads 1-2 earlier tensors and writes one new tensor.
Plan random_plan(std::mt19937& rng, int nodes, int max_size = 300) {
  Plan p;
  p.tensors.push_back({"in", DType::kFloat32, {4}, TensorKind::kInput});
  p.inputs.push_back(0);
  for (int n = 0; n < nodes; ++n) {
    std::uniform_int_distribution<int> pick(0, static_cast<int>(p.tensors.size()) - 1), sz(1, max_size);
    PlanNode node;
    node.name = "n" + std::to_string(n);
    node.op = "Reshape";
    node.inputs = {pick(rng)};
    if (rng() % 2) node.inputs.push_back(pick(rng));
    p.tensors.push_back({"t" + std::to_string(n), DType::kFloat32, {sz(rng)}, TensorKind::kActivation});
    node.outputs = {static_cast<int32_t>(p.tensors.size() - 1)};
    node.backend = rng() % 3 ? Backend::kCpu : Backend::kOpenCL;
    p.nodes.push_back(node);
  }
  p.outputs = {static_cast<int32_t>(p.tensors.size() - 1)};
  for (int32_t t = 1; t + 1 < static_cast<int32_t>(p.tensors.size()); ++t)
    if (rng() % 4 == 0) p.outputs.push_back(t);
  return p;
}

TEST(MemoryPlan, ChainReusesMemory) {
  Plan p;
  p.tensors.push_back({"in", DType::kFloat32, {256}, TensorKind::kInput});
  p.inputs = {0};
  for (int n = 0; n < 6; ++n) {
    p.tensors.push_back({"t" + std::to_string(n), DType::kFloat32, {256}, TensorKind::kActivation});
    p.nodes.push_back({"n" + std::to_string(n), "Reshape", {}, {n}, {n + 1}, Backend::kCpu, "", {}});
  }
  p.outputs = {6};
  std::vector<Backend> b(p.nodes.size(), Backend::kCpu);
  ArenaPlan a = plan_arena(p, b, Backend::kCpu, 64);
  // A chain needs two live buffers at a time, plus the output that lives to the end.
  EXPECT_EQ(a.unplanned, 6u * 1024);
  EXPECT_LE(a.size, 3u * 1024);
  EXPECT_EQ(a.offset[0], -1) << "caller-bound inputs are not in the host arena";
}

TEST(MemoryPlan, LiveTensorsNeverOverlap) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 200; ++iter) {
    Plan p = random_plan(rng, 2 + iter % 30);
    std::vector<Backend> b;
    for (const PlanNode& n : p.nodes) b.push_back(n.backend);
    for (Backend be : {Backend::kCpu, Backend::kOpenCL}) {
      // Without in-place ops every tensor has memory of its own (InPlace* below covers groups).
      ArenaPlan a = plan_arena(p, b, be, 64, false);
      // Recompute liveness independently: a tensor produced on `be` is live from its
      // production to its last use anywhere (another backend may copy it out then); one only
      // read on `be` is live from its first to its last read there.
      const size_t nt = p.tensors.size();
      std::vector<int> first(nt, -1), last_here(nt, -1), last_any(nt, -1);
      std::vector<bool> produced(nt, false);
      for (size_t n = 0; n < p.nodes.size(); ++n) {
        const bool here = b[n] == be;
        auto touch = [&](int32_t t) {
          if (here && first[t] < 0) first[t] = static_cast<int>(n);
          if (here) last_here[t] = static_cast<int>(n);
          last_any[t] = static_cast<int>(n);
        };
        for (int32_t t : p.nodes[n].inputs) touch(t);
        for (int32_t t : p.nodes[n].outputs) {
          touch(t);
          if (here) produced[t] = true;
        }
      }
      for (int32_t t : p.outputs) last_any[t] = static_cast<int>(p.nodes.size());
      std::vector<int> last(nt);
      for (size_t t = 0; t < nt; ++t) last[t] = produced[t] ? last_any[t] : last_here[t];
      if (be == Backend::kCpu)
        for (int32_t t : p.outputs) last[t] = static_cast<int>(p.nodes.size());
      for (size_t x = 0; x < nt; ++x)
        for (size_t y = x + 1; y < nt; ++y) {
          if (a.offset[x] < 0 || a.offset[y] < 0) continue;
          const int fx = first[x] < 0 ? 0 : first[x], fy = first[y] < 0 ? 0 : first[y];
          // Produced-and-consumed-here tensors must not share memory while both are live.
          const bool both_live = fx <= last[y] && fy <= last[x];
          const int64_t ex = a.offset[x] + static_cast<int64_t>(p.tensors[x].bytes());
          const int64_t ey = a.offset[y] + static_cast<int64_t>(p.tensors[y].bytes());
          const bool overlap = a.offset[x] < ey && a.offset[y] < ex;
          if (both_live && overlap && first[x] >= 0 && first[y] >= 0)
            ADD_FAILURE() << "iteration " << iter << ": " << p.tensors[x].name << " and " << p.tensors[y].name
                          << " overlap while live";
          EXPECT_LE(static_cast<uint64_t>(std::max(ex, ey)), a.size);
        }
      // The shared-buffer placement obeys the same liveness: tensors in one buffer never live
      // at the same time, and each fits its buffer.
      SharedBuffersPlan sb = plan_shared_buffers(p, b, be, 64, false);
      for (size_t x = 0; x < nt; ++x) {
        EXPECT_EQ(sb.buffer[x] >= 0, a.offset[x] >= 0) << "the two plans disagree on who is placed";
        if (sb.buffer[x] < 0) continue;
        EXPECT_LE(p.tensors[x].bytes(), sb.sizes[sb.buffer[x]]);
        for (size_t y = x + 1; y < nt; ++y) {
          if (sb.buffer[y] != sb.buffer[x] || first[x] < 0 || first[y] < 0) continue;
          if (first[x] <= last[y] && first[y] <= last[x])
            ADD_FAILURE() << "iteration " << iter << ": " << p.tensors[x].name << " and " << p.tensors[y].name
                          << " share a buffer while live";
        }
      }
    }
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

Plan chain(int nodes, Backend backend) {
  Plan p;
  p.tensors.push_back({"in", DType::kFloat32, {256}, TensorKind::kInput});
  p.inputs = {0};
  for (int n = 0; n < nodes; ++n) {
    p.tensors.push_back({"t" + std::to_string(n), DType::kFloat32, {256}, TensorKind::kActivation});
    p.nodes.push_back({"n" + std::to_string(n), "Reshape", {}, {n}, {n + 1}, backend, "", {}});
  }
  p.outputs = {nodes};
  return p;
}

TEST(MemoryPlan, InPlaceChainNeedsOneSlot) {
  const Plan p = chain(6, Backend::kCpu);
  const std::vector<Backend> b(p.nodes.size(), Backend::kCpu);
  const ArenaPlan with = plan_arena(p, b, Backend::kCpu, 64), without = plan_arena(p, b, Backend::kCpu, 64, false);
  EXPECT_EQ(with.size, 1024u) << "each Reshape writes over its dying input";
  EXPECT_GE(without.size, 2048u);
  for (int t = 1; t <= 6; ++t) EXPECT_EQ(with.offset[t], with.offset[1]);
  // The caller's input is never written over.
  const std::vector<int32_t> root = in_place_roots(p, b, Backend::kCpu);
  EXPECT_EQ(root[1], 1);
}

TEST(MemoryPlan, InPlaceOnlyWhereTheInputDies) {
  // t0 is read by n1 and n2: n1 must not write over it; n2 (its last reader) may. A plan output
  // is never written over, and a tensor made on the other backend is not joined.
  Plan p = chain(1, Backend::kCpu);
  p.tensors.push_back({"a", DType::kFloat32, {256}, TensorKind::kActivation});
  p.tensors.push_back({"b", DType::kFloat32, {256}, TensorKind::kActivation});
  p.tensors.push_back({"c", DType::kFloat32, {16, 16}, TensorKind::kActivation});
  p.nodes.push_back({"n1", "Reshape", {}, {1}, {2}, Backend::kCpu, "", {}});
  p.nodes.push_back({"n2", "Reshape", {}, {1}, {3}, Backend::kCpu, "", {}});
  p.nodes.push_back({"n3", "Reshape", {}, {3}, {4}, Backend::kOpenCL, "", {}});
  p.outputs = {2, 4};
  std::vector<Backend> b;
  for (const PlanNode& n : p.nodes) b.push_back(n.backend);
  const std::vector<int32_t> cpu = in_place_roots(p, b, Backend::kCpu), cl = in_place_roots(p, b, Backend::kOpenCL);
  EXPECT_EQ(cpu[2], 2) << "n1 would clobber t0 that n2 still reads";
  EXPECT_EQ(cpu[3], 1) << "n2 is t0's last reader";
  EXPECT_EQ(cl[4], 4) << "b was made on the cpu";
}

TEST(MemoryPlan, InPlaceGroupsNeverOverlapOtherLiveTensors) {
  std::mt19937 rng(11);
  size_t joined = 0;
  for (int iter = 0; iter < 200; ++iter) {
    Plan p = random_plan(rng, 2 + iter % 30, 3);  // few sizes, so many same-size pairs
    std::vector<Backend> b;
    for (const PlanNode& n : p.nodes) b.push_back(n.backend);
    for (Backend be : {Backend::kCpu, Backend::kOpenCL}) {
      const ArenaPlan a = plan_arena(p, b, be, 64);
      const std::vector<int32_t> root = in_place_roots(p, b, be);
      const size_t nt = p.tensors.size();
      // Liveness as in LiveTensorsNeverOverlap, then per group.
      std::vector<int> first(nt, -1), last_here(nt, -1), last_any(nt, -1), last(nt);
      std::vector<bool> produced(nt, false);
      for (size_t n = 0; n < p.nodes.size(); ++n)
        for (const auto* list : {&p.nodes[n].inputs, &p.nodes[n].outputs})
          for (int32_t t : *list) {
            if (b[n] == be && first[t] < 0) first[t] = static_cast<int>(n);
            if (b[n] == be) last_here[t] = static_cast<int>(n);
            last_any[t] = static_cast<int>(n);
            produced[t] = produced[t] || (b[n] == be && list == &p.nodes[n].outputs);
          }
      for (int32_t t : p.outputs) last_any[t] = static_cast<int>(p.nodes.size());
      for (size_t t = 0; t < nt; ++t) last[t] = produced[t] ? last_any[t] : last_here[t];
      if (be == Backend::kCpu)
        for (int32_t t : p.outputs) last[t] = static_cast<int>(p.nodes.size());
      std::vector<int> gfirst(nt, 1 << 30), glast(nt, -1);
      for (size_t t = 0; t < nt; ++t) {
        if (first[t] < 0 || a.offset[t] < 0) continue;
        gfirst[root[t]] = std::min(gfirst[root[t]], first[t]);
        glast[root[t]] = std::max(glast[root[t]], last[t]);
        if (root[t] != static_cast<int32_t>(t)) {
          ++joined;
          EXPECT_EQ(a.offset[t], a.offset[root[t]]);
          EXPECT_EQ(p.tensors[t].bytes(), p.tensors[root[t]].bytes());
        }
      }
      for (size_t x = 0; x < nt; ++x)
        for (size_t y = x + 1; y < nt; ++y) {
          const int32_t rx = root[x], ry = root[y];
          if (rx == ry || a.offset[x] < 0 || a.offset[y] < 0 || first[x] < 0 || first[y] < 0) continue;
          const bool live = gfirst[rx] <= glast[ry] && gfirst[ry] <= glast[rx];
          const int64_t ex = a.offset[x] + static_cast<int64_t>(p.tensors[x].bytes());
          const int64_t ey = a.offset[y] + static_cast<int64_t>(p.tensors[y].bytes());
          if (live && a.offset[x] < ey && a.offset[y] < ex)
            ADD_FAILURE() << "iteration " << iter << ": " << p.tensors[x].name << " and " << p.tensors[y].name
                          << " overlap while their groups are live";
        }
    }
  }
  EXPECT_GT(joined, 50u) << "the random plans should exercise in-place groups";
}

}  // namespace
}  // namespace kiln
