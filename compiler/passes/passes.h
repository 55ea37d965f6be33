// Graph passes, each in its own file: `Status run_<pass>(ir::Graph&, const PassContext&)`.
#pragma once
#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/device/devices.h"

namespace kiln {

struct PassContext {
  const BuildOptions& options;
  // The plan targets an OpenCL device (else the cpu only): passes whose rewrite only pays on
  // the OpenCL kernels check it.
  bool opencl_target = false;
  DeviceCaps target_caps;  // the target device's (the cpu's when it is the cpu)
};

// Applies --shapes to the graph inputs; fails on unfixed dynamic dims or unknown names.
Status run_fix_input_shapes(ir::Graph& g, const PassContext& ctx);
// Resolves op versions, infers every value's dtype and shape, canonicalizes nodes for the
// runtime and folds nodes whose inputs are all build-time constants (Shape→Gather→Concat→
// Reshape chains disappear here).
Status run_infer_and_fold(ir::Graph& g, const PassContext& ctx);
// The same for one node (passes that insert nodes after inference use it on those nodes).
Status infer_and_fold_node(ir::Node& n, ir::Graph& g, int64_t opset);
// The same for a whole graph without build options (control-flow ops infer their subgraphs).
Status infer_graph(ir::Graph& g);
// Drops nodes whose outputs are constants or unused.
Status run_dead_code(ir::Graph& g, const PassContext& ctx);
void remove_dead_nodes(ir::Graph& g);

// Q/DQ models: DequantizeLinear -> Conv/MatMul/Gemm -> QuantizeLinear into QLinearConv /
// QLinearMatMul with the integer weights (always on: it is what such a model means).
Status run_fold_qdq(ir::Graph& g, const PassContext& ctx);

// --precision int8 / fp8 / fp8-e5m2 (or per layer): calibrates and turns Conv/MatMul/Gemm with
// constant weights into INT8 or FP8 kernels between a QuantizeLinear and a DequantizeLinear.
Status run_quantize_ptq(ir::Graph& g, const PassContext& ctx);

// --precision fp16 / --layer-precision NODE=fp16: float16 tensors and half weights for the
// nodes assigned fp16 whose ops have float16 kernels, Casts at the fp32 boundaries.
Status run_convert_fp16(ir::Graph& g, const PassContext& ctx);

// --io-precision fp16: float32 graph inputs and outputs become float16 (after convert_fp16,
// whose boundary Casts it absorbs).
Status run_io_precision(ir::Graph& g, const PassContext& ctx);

// Merges QuantizeLinear nodes of one tensor with equal scale, zero point and attributes
// (post-training quantization inserts one per layer; Q, K and V read the same input).
Status run_merge_quantize(ir::Graph& g, const PassContext& ctx);

// Fusion passes (skipped with --no-fuse), in pipeline order.
// Folds DequantizeLinear -> bias/residual/activation -> QuantizeLinear chains after integer
// kernels into their epilogue, so int8 activations flow between layers.
Status run_fuse_quantized(ir::Graph& g, const PassContext& ctx);
// Folds inference BatchNormalization into the Conv/ConvTranspose/Gemm that feeds it.
Status run_fold_batchnorm(ir::Graph& g, const PassContext& ctx);
// Collapses the elementwise subgraphs that compute GELU into Gelu nodes (an activation the
// linear ops' epilogues fuse).
Status run_fuse_gelu(ir::Graph& g, const PassContext& ctx);
// Fuses bias adds and activations (Relu, Clip, HardSwish, Sigmoid, ...) into the Conv/Gemm/MatMul that feeds them.
Status run_fuse_activation(ir::Graph& g, const PassContext& ctx);
// Fuses a residual Add into the Conv/Gemm epilogue where the kernel allows it.
Status run_fuse_residual_add(ir::Graph& g, const PassContext& ctx);
// Fuses chains of elementwise ops into one Elementwise kernel.
Status run_fuse_elementwise(ir::Graph& g, const PassContext& ctx);
// Fuses Softmax(Q K^T * scale [+ mask]) V patterns into one Attention node; runs last.
Status run_fuse_attention(ir::Graph& g, const PassContext& ctx);

// A per-tensor QuantizeLinear of an output that its producer can write quantized too
// (CpuOp::quantized_output: LayerNormalization, Attention) becomes that producer's extra output, on
// OpenCL targets (one launch and one read of the output fewer).
Status run_fuse_quantize_output(ir::Graph& g, const PassContext& ctx);
// The Q, K and V projections of an Attention node (one input, three products with constant
// weights) become one product with the weights side by side, whose output the Attention reads
// as Q, K and V at once (attngeo::kAttrQkvPacked).
Status run_pack_qkv(ir::Graph& g, const PassContext& ctx);

// --layout: channels-last regions of convolutions (runtime/ops/channels_last.h; stems in their
// space-to-depth form, the pools between), Transposes at their borders; after every fusion (it
// reads the fused epilogues' residuals).
Status run_channels_last(ir::Graph& g, const PassContext& ctx);

}  // namespace kiln
