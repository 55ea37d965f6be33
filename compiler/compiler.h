// The compiler's entry point: ONNX model → optimized, partitioned plan.
#pragma once
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/quant/calibration_set.h"
#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"
#include "runtime/core/status.h"
#include "runtime/plan/partition.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct ResolvedDevice;

// What the nodes of an INT8/FP8 build that quantization leaves in floating point run in.
enum class FallbackPrecision { kFp32, kFp16 };

// --layout: where convolutions keep their activations channels-last (NHWC; compiler/
// passes/channels_last.cpp). kAuto: where the target's kernels want it (the tensor cores);
// kChannelsFirst: never (ONNX's NCHW throughout); kChannelsLast: every convolution that can.
enum class ActivationLayout { kAuto, kChannelsFirst, kChannelsLast };

struct BuildOptions {
  // --device: the target the plan is built for; a preference list "opencl:0,cpu" names the
  // OpenCL device first and allows the CPU fallback (always allowed: the CPU runs every op).
  std::string device = "auto";
  PartitionOptions partition;             // --partition, --cpu-nodes, --transfer-gbps
  std::map<std::string, Shape> shapes;    // --shapes NAME=DIMS for dynamic input dims
  // --min-shapes / --max-shapes NAME=DIMS: the range of a dynamic input (see
  // compiler/plan/dynamic_shapes.h); --shapes then names the point the build optimizes for.
  std::map<std::string, Shape> min_shapes, max_shapes;
  bool fuse = true;                       // --no-fuse turns fusion passes off
  // Attention's Q, K and V projections as one product (compiler/passes/pack_qkv.cpp); tests
  // turn it off to compare against the three products.
  bool pack_qkv = true;
  // --freeze NAME=FILE.npy: inputs whose values are fixed at build time and become constants
  // (like TensorRT's shape tensors: a Reshape's target shape fed as a model input, say).
  std::map<std::string, HostTensor> frozen_inputs;
  // --precision: the default precision of every node: "fp32" (default), "fp16", "int8"
  // (post-training: Conv and MatMul with constant weights run as QLinearConv / QLinearMatMul
  // with symmetric per-channel weights and per-tensor activations calibrated on --calib
  // samples), "fp8", "fp8-e5m2" or "best".
  std::string precision = "fp32";
  // --layer-precision NODE=P: per-node overrides by ONNX node name (see compiler/quant/precision.h).
  std::map<std::string, std::string> layer_precision;
  // --fallback-precision fp32|fp16: the nodes assigned int8/fp8/fp8-e5m2 that post-training
  // quantization leaves in float (attention, LayerNorm, Softmax, GELU chains, residual Adds: all
  // but the quantized linear layers and their Quantize/Dequantize nodes) run in FP16 instead of
  // FP32, as TensorRT's --int8 --fp16 (compiler/quant/precision.h: float_precision). A node's
  // own --layer-precision fp32 still keeps it FP32.
  FallbackPrecision fallback_precision = FallbackPrecision::kFp32;
  // --io-precision fp32|fp16: the dtype of the plan's float inputs and outputs (kFloat32, as the
  // model declares them, or kFloat16: half the bytes to and from the host, as TensorRT's
  // --inputIOFormats/--outputIOFormats=fp16; compiler/passes/io_precision.cpp).
  DType io_dtype = DType::kFloat32;
  // --accuracy-budget X (> 0): the largest relative L2 error any output may have against FP32
  // over the calibration samples; the build raises the most sensitive layers to higher
  // precision until it holds (compiler/quant/precision_search.h). 0: no budget.
  double accuracy_budget = 0;
  // --tune: kernel variants are timed on the device (compiler/plan/select_kernels.h), and `best`
  // ranks precisions per layer by measured latency instead of the cost model.
  bool tune = false;
  std::string tuning_cache;               // --tuning-cache FILE
  // --allow-tf32: FP32 Conv/Gemm/MatMul on OpenCL may run on TF32 tensor cores (10-bit
  // mantissa products, float32 sums), as TensorRT's TF32 flag; off by default.
  bool allow_tf32 = false;
  ActivationLayout layout = ActivationLayout::kAuto;  // --layout auto|nchw|nhwc
  std::string calib_dir;                  // --calib DIR
  // Calibration samples given in memory (kiln_build_options_set_calib_source, Python's calib=):
  // used instead of calib_dir when set.
  std::shared_ptr<const std::vector<CalibrationSample>> calib_samples;
  bool has_calibration_data() const { return calib_samples || !calib_dir.empty(); }
  // --calibrator entropy|minmax|percentile[=P]; empty: entropy when an INT8 layer is calibrated,
  // else minmax (FP8's wide range loses more to entropy's clipping than it gains).
  std::string calibrator;
  std::string calib_cache;                // --calib-cache FILE
  // --smooth-quant[=ALPHA]: SmoothQuant outlier migration (compiler/quant/smooth_quant.h) for
  // the INT8 MatMul/Gemm layers whose input channels spread widely; ALPHA in [0, 1], < 0: off.
  double smooth_quant_alpha = -1;
  // The accuracy checks of calibrated INT8/FP8 builds (--no-accuracy-check turns them off): the
  // layer check (compiler/quant/layer_check.h) and, without --accuracy-budget,
  // the precision search with the default budget kCheckAccuracyBudget
  // (compiler/quant/precision_search.h).
  bool accuracy_check = true;
  // Bias correction of INT8/FP8 layers (compiler/quant/bias_correction.h); --no-bias-correction
  // turns it off.
  bool bias_correction = true;
  // Commands that build one model many times (precision search, sweep) without a --calib-cache:
  // a scratch folder holding one cache per calibrator, so each build calibrates once.
  std::string calib_cache_dir;
  std::FILE* report = nullptr;            // where calibration progress and tables go
  // --max-memory BYTES: the most host memory the plan may need (activations at the peak plus
  // weights); 0: the host's physical memory. Device plans are held to the device's memory too.
  uint64_t max_memory = 0;
  bool allow_over_memory = false;         // --allow-over-memory: write the plan anyway
};

// Resolves a --device value, which may be a preference list ("opencl:0,cpu"), to the target
// device; at most one OpenCL device per plan.
Status resolve_build_device(const std::string& spec, ResolvedDevice* out);

// Parses one --shapes argument "NAME=DIMS" (split at the last '=': names may contain ':' or '=').
Status parse_shape_arg(const std::string& arg, std::string* name, Shape* dims);

namespace ir {
class Graph;
}
// Runs the pass pipeline on an already imported graph (tests build graphs directly).
Status build_plan_from_graph(ir::Graph& g, const BuildOptions& opts, Plan* out);

Status build_plan_from_file(const std::string& onnx_path, const BuildOptions& opts, Plan* out);
Status build_plan_from_bytes(const std::string& model_bytes, const std::string& base_dir,
                             const BuildOptions& opts, Plan* out);

// Writes serialize_plan(plan) to `path` (via a temporary file, so a failed write never leaves
// a truncated plan behind).
Status write_plan_file(const Plan& plan, const std::string& path);
// The same for an already serialized plan.
Status write_plan_bytes(const std::vector<uint8_t>& bytes, const std::string& path);

}  // namespace kiln
