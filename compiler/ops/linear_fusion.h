// Helpers shared by the fusion passes that grow a Conv/ConvTranspose/Gemm/MatMul node's
// epilogue (fold_batchnorm, fuse_residual_add, fuse_activation). The attribute and input
// convention they write is runtime/ops/linear_epilogue.h.
#pragma once
#include <unordered_map>
#include <vector>

#include "compiler/ir/graph.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln::linear {

using ConsumerMap = std::unordered_map<const ir::Value*, std::vector<ir::Node*>>;

// A live Conv/ConvTranspose/Gemm/MatMul node still in its runtime form, float32 output.
bool is_linear_node(const ir::Node& n);

// The node that alone reads `v` (once), when `v` is not a graph output; else nullptr.
ir::Node* sole_consumer(const ir::Graph& g, const ConsumerMap& consumers, const ir::Value* v);

// Records in into->fused the ONNX nodes `part` stands for: its own fused list when it is itself a
// fusion (fuse_gelu's Gelu), else its name.
void append_fused(ir::Node* into, const ir::Node& part);

// Makes `producer` produce `absorbed`'s (single) output in its place, marks `absorbed` dead
// and records its name in producer->fused (which starts with the producer's own name).
void absorb(ir::Node* producer, ir::Node* absorbed, ConsumerMap* consumers);

// The epilogue form (act, act_alpha, act_beta) of activation node `n`; false when it cannot be
// fused. Parameters come from the ONNX attributes; Clip's bounds from evaluating the node at
// +-FLT_MAX; every result is checked against the node's own CPU kernel on probe values.
bool activation_epilogue(const ir::Node& n, Epilogue* e);

// A fresh constant value holding `t`.
ir::Value* new_constant(ir::Graph& g, const std::string& hint, HostTensor t);

}  // namespace kiln::linear
