// The generic per-op harness: builds a one-node graph, compiles it for the cpu and the opencl
// device with the real compiler, runs both through the real runtime and compares the outputs.
// The CPU backend is the reference; numpy/ONNX references live in the conformance tests.
#pragma once
#include <functional>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/core/attrs.h"
#include "runtime/core/tensor.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/plan.h"

namespace kiln::test {

struct OpSpec {
  std::string op_type;
  int opset = 17;
  Attributes attrs;
  std::vector<HostTensor> inputs;   // dtype kUndefined: optional input left out
  std::vector<bool> constant;       // per input: true = initializer (build-time constant)
  int num_outputs = 1;
  std::string precision = "fp32";   // BuildOptions::precision (fp16: the node runs in float16)
  bool allow_tf32 = false;          // BuildOptions::allow_tf32
  // BuildOptions::layout (kChannelsLast: the op runs channels-last between two Transposes)
  ActivationLayout layout = ActivationLayout::kAuto;
};

// Compiles `spec` (a one-node graph: inputs in0.., outputs out0..) for `device`.
Status build_op_plan(const OpSpec& spec, const std::string& device, Plan* out);

// Binds the plan inputs of `spec`'s plan (named in0.., see build_op_plan) to its tensors.
Status bind_op_inputs(ExecutionContext& ctx, const Plan& plan, const OpSpec& spec);

// Compiles `spec` for `device` ("cpu", "opencl") and runs it; fills the outputs in order and,
// when `plan_out` is given, the compiled plan (to check which backend each node got).
Status run_op(const OpSpec& spec, const std::string& device, std::vector<HostTensor>* outputs,
              Plan* plan_out = nullptr);

// Runs on cpu and opencl and compares every output. Fails if no node ran on OpenCL (so a
// silent CPU fallback cannot pass as an OpenCL test).
::testing::AssertionResult opencl_matches_cpu(const OpSpec& spec, double rtol = 1e-4, double atol = 1e-5);

// Runs the opencl plan once per kernel variant the device offers for each OpenCL node (and its
// portable kernel) and compares each run with the cpu. `variants_run` counts the runs; `only`,
// when given, picks the variants to run (the portable kernel always runs).
::testing::AssertionResult every_variant_matches_cpu(const OpSpec& spec, double rtol, double atol,
                                                     int* variants_run = nullptr,
                                                     const std::function<bool(const KernelChoice&)>& only = nullptr);

// `spec` (one convolution) forced channels-last (between two Transposes) on the cpu and, where
// there is one, the OpenCL device, against the cpu's NCHW run of it; fails unless the plan has
// exactly that one node channels-last and the two Transposes.
::testing::AssertionResult channels_last_matches_nchw(OpSpec spec, double rtol, double atol);

// The cpu device's fast path (oneDNN, threaded loops) against its reference kernels
// (KILN_CPU_REFERENCE=1) on the same plan and inputs; fails unless every node of the one-node
// plan (or at least `min_fast_nodes` of a plan's nodes) ran on the fast path.
::testing::AssertionResult cpu_fast_matches_reference(const OpSpec& spec, double rtol = 1e-4, double atol = 1e-5);
::testing::AssertionResult cpu_fast_matches_reference(const std::shared_ptr<const Plan>& plan,
                                                      const std::vector<HostTensor>& inputs, double rtol, double atol,
                                                      size_t min_fast_nodes);
// Runs `plan` on the cpu device with `inputs` in plan input order; *fast_nodes counts the nodes
// the fast path ran.
Status run_plan(const std::shared_ptr<const Plan>& plan, const std::vector<HostTensor>& inputs,
                std::vector<HostTensor>* outputs, size_t* fast_nodes = nullptr);

// Sets (value null: unsets) an environment variable for a scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value);
  ~ScopedEnv();

 private:
  std::string name_, old_;
  bool had_ = false;
};

// |got - want| <= atol + rtol * |want| elementwise, same dtype and shape; NaNs must match.
::testing::AssertionResult tensors_close(const HostTensor& got, const HostTensor& want, double rtol,
                                         double atol);
// The nodes of `plan` that run channels-last (runtime/ops/channels_last.h) on the tensor cores.
int channels_last_on_mma(const Plan& plan);

// tensors_close for each of several outputs (the failure names the output).
::testing::AssertionResult outputs_close(const std::vector<HostTensor>& got, const std::vector<HostTensor>& want,
                                         double rtol, double atol);

// Uniform values in [lo, hi) (integers: rounded; bool: 0/1).
HostTensor random_tensor(DType dtype, const Shape& shape, std::mt19937& rng, double lo = -1.0, double hi = 1.0);
// A float32 scalar (shape []) holding v: a scale, a constant operand.
HostTensor scalar_f32(float v);
// A tensor of `dtype` holding `v` repeated (float8: encoded with saturation; integers: as given).
HostTensor tensor_of(DType dtype, const Shape& shape, const std::vector<double>& v);
// A scalar (shape []) of `dtype` holding v: a zero point, a scale.
HostTensor scalar_of(DType dtype, double v);

// QuantizeLinear of float32 `y` with one scale and zero point, as ONNX defines it (round half to
// even, saturate), written out independently of the kernels: int8, uint8, float8 (E4M3FN, E5M2).
HostTensor quantize_reference(const HostTensor& y, DType t, float scale, int zero_point);
// A random shape of `rank` with dims in [1, max_dim].
Shape random_shape(int rank, std::mt19937& rng, int max_dim = 5);
// Whether an OpenCL device exists (tests of the opencl device skip when none).
bool have_opencl();
// Whether the default OpenCL device offers the tensor-core variant for operands `e`
// (runtime/backends/opencl/mma_gemm.h: tensor cores, or KILN_MMA_EMULATE=1).
bool opencl_offers_mma(mma::Elem e);

}  // namespace kiln::test
