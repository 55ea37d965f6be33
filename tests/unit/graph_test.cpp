// Graph surgery invariants the passes rely on.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "compiler/passes/passes.h"

namespace kiln {
namespace {

// Constant folding keeps a folded value and leaves its producer for dead-code elimination;
// once the producer is freed the value must not point at it (fuse_elementwise read such a
// dangling producer and crashed, depending on the heap, on all-MiniLM-L6-v2).
TEST(Graph, EraseDeadClearsProducersOfSurvivingValues) {
  ir::Graph g;
  g.opsets[""] = 17;
  ir::Value* x = g.add_value("x");
  g.inputs.push_back(x);
  ir::Node* folded = g.add_node("Shape", "folded");
  ir::Value* c = g.add_value("c");
  folded->inputs = {x};
  folded->outputs = {c};
  c->producer = folded;
  c->constant = std::make_shared<HostTensor>(DType::kInt64, std::vector<int64_t>{1});
  ir::Node* use = g.add_node("Identity", "use");
  ir::Value* y = g.add_value("y");
  use->inputs = {c};
  use->outputs = {y};
  y->producer = use;
  g.outputs.push_back(y);

  BuildOptions opts;
  ASSERT_TRUE(run_dead_code(g, PassContext{opts}).is_ok());
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.nodes()[0].get(), use);
  EXPECT_EQ(c->producer, nullptr);
  EXPECT_EQ(y->producer, use);
}

}  // namespace
}  // namespace kiln
