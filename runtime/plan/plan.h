// The in-memory plan: what the compiler writes and the runtime executes. Plain data; every
// index in it has been checked by verify_plan() before the runtime touches it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace kiln {

enum class Backend : uint8_t { kCpu = 0, kOpenCL = 1 };
const char* backend_name(Backend b);

// Where a tensor's bytes come from.
enum class TensorKind : uint8_t {
  kInput = 0,       // bound by the caller for each run
  kConstant = 1,    // stored in the plan's weights section
  kActivation = 2,  // produced by a node
};

struct PlanTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
  TensorKind kind = TensorKind::kActivation;
  uint64_t weight_offset = 0;  // constants: byte offset into Plan::weights (64-byte aligned)
  uint64_t weight_bytes = 0;

  uint64_t bytes() const { return static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dtype); }
};

// The kernel variant the compiler chose for a node on its target device (kernel variants of an
// op family: runtime/backends/opencl/variants.h), with its tunable parameters. Plain data, so the
// plan format does not depend on the op registry. An empty variant means the op's portable kernel.
struct KernelChoice {
  std::string variant;
  std::vector<std::pair<std::string, int64_t>> params;

  bool empty() const { return variant.empty(); }
  int64_t param(const std::string& key, int64_t fallback) const {
    for (const auto& [k, v] : params)
      if (k == key) return v;
    return fallback;
  }
  // "mma[bm=128,bn=128]" (inspect, notices, the tuning cache); "portable" when empty.
  std::string str() const;
  bool operator==(const KernelChoice& o) const { return variant == o.variant && params == o.params; }
};
constexpr size_t kMaxKernelParams = 16;

struct PlanNode {
  std::string name;                 // the ONNX node name (or a generated one)
  std::string op;                   // runtime op name, see runtime/ops/ops.def
  Attributes attrs;
  std::vector<int32_t> inputs;      // tensor indices; -1 = optional input left out
  std::vector<int32_t> outputs;     // tensor indices
  Backend backend = Backend::kCpu;
  std::string kernel;               // kernel chosen by the compiler, shown by `kiln inspect`
  std::vector<std::string> fused;   // original ONNX nodes folded into this one (empty: itself)
  KernelChoice choice;              // OpenCL nodes: the variant picked for the target device
  // Control flow (If, Loop, Scan): the node's subgraphs, indices into Plan::graphs, in the op's
  // order (If: then, else). Each index is owned by exactly one node.
  std::vector<int32_t> subgraphs;
};

// The body of a control-flow node: a graph of its own that the node's CPU kernel runs (If
// picks a branch, Loop iterates, Scan slices), on the host, once or many times per inference.
// Its tensor indices are into its own `tensors`; its constants live in the plan's weights.
// Values of the enclosing graph that it reads (ONNX outer-scope names) are operands of the
// owning node: capture i is tensor captures[i], bound to the owner's input capture_operands[i].
struct PlanGraph {
  std::vector<PlanTensor> tensors;
  std::vector<PlanNode> nodes;             // topological order; every node on the CPU
  std::vector<int32_t> inputs;             // formal inputs (Loop: iteration, condition, state...)
  std::vector<int32_t> outputs;
  std::vector<int32_t> captures;           // kInput tensors bound to the owner's operands
  std::vector<int32_t> capture_operands;   // owner input index of each capture
};

// A maximal run of consecutive nodes on one backend. Derived from the node backends by
// compute_segments(); stored in the plan so `kiln inspect` can show the transfers.
struct Segment {
  Backend backend = Backend::kCpu;
  int32_t first_node = 0;
  int32_t end_node = 0;                 // one past the last node
  std::vector<int32_t> copy_in;         // tensors read here that live on the other backend
};

// What the plan was built for, and what a device must offer to run its kernels.
struct DeviceCaps {
  std::string kind = "cpu";  // "cpu" or "opencl"
  // CL_DEVICE_TYPE bits of an OpenCL device (CL_DEVICE_TYPE_GPU = 4, _CPU = 2, _ACCELERATOR = 8);
  // 0 for the cpu backend. The partitioner's cost model reads it.
  uint64_t device_type = 0;
  std::string name;
  std::string vendor;
  std::string driver_version;
  std::string opencl_c_version;
  std::vector<std::string> extensions;
  uint64_t global_mem_bytes = 0;
  uint64_t max_alloc_bytes = 0;
  uint64_t local_mem_bytes = 0;
  uint32_t compute_units = 0;
  // NVIDIA devices: compute capability as major * 10 + minor (cl_nv_device_attribute_query);
  // 0 where the device does not say. Tensor-core kernel variants need >= 80 (FP8: 89).
  uint32_t compute_capability = 0;
};

// Dynamic shapes. A plan built with --min-shapes/--max-shapes stores every shape, attribute and
// constant at the max point (memory is planned there) plus, for each integer that changes
// within the range, a polynomial in the dynamic input dims (multilinear, integer coefficients,
// in u_i = v_i - min_i) that the runtime evaluates when a context is reshaped.
struct DynVar {
  std::string name;                 // the ONNX dim_param, or "input[dim]"
  int64_t min = 0, max = 0, opt = 0;
};
// One dynamic dim of a plan input: reshaping sets var `var` from that dim.
struct DynInputDim {
  int32_t tensor = 0;
  uint32_t dim = 0;
  uint32_t var = 0;
};
struct DynTerm {
  uint32_t vars = 0;  // bit set of the variables multiplied in this term (0: the constant)
  int64_t coef = 0;
};
enum class DynTarget : uint8_t {
  kTensorDim = 0,  // tensors[index].shape[pos]
  kAttrInt = 1,    // nodes[index].attrs[attr] (an int)
  kAttrInts = 2,   // nodes[index].attrs[attr][pos] (an ints element)
};
// A floor or ceil division of a multilinear sum by a positive constant: floor(sum / divisor).
// Its terms' bit sets name the variables (bits 0..nv-1) and the expression's earlier divisions
// (bit nv + j: divs[j]), so divisions nest: floor((floor((W-1)/2)+1-1)/2)+1.
struct DynDiv {
  bool ceil = false;
  int64_t divisor = 1;
  std::vector<DynTerm> terms;
};
struct DynExpr {
  DynTarget target = DynTarget::kTensorDim;
  int32_t index = 0;
  std::string attr;
  uint32_t pos = 0;
  // The value: sum of coef * product of the atoms in `vars`, an atom being u_i = v_i - min_i
  // (bit i < nv) or the value of divs[j] (bit nv + j). A plain polynomial has no divs.
  std::vector<DynTerm> terms;
  std::vector<DynDiv> divs;
};
constexpr size_t kMaxDynVars = 4;
constexpr size_t kMaxDynDivs = 24;   // nv + divs fit the 32-bit atom sets
constexpr size_t kMaxDynTerms = 64;  // per sum (the expression's, each division's)
inline bool operator==(const DynTerm& a, const DynTerm& b) { return a.vars == b.vars && a.coef == b.coef; }
inline bool operator==(const DynDiv& a, const DynDiv& b) {
  return a.ceil == b.ceil && a.divisor == b.divisor && a.terms == b.terms;
}

struct Plan {
  uint32_t format_version = 0;
  std::string writer_version;
  std::string model_name;
  DeviceCaps target;
  std::vector<std::string> required_caps;  // capabilities any device running the OpenCL nodes needs
  std::vector<PlanTensor> tensors;
  std::vector<PlanNode> nodes;              // topological order
  std::vector<int32_t> inputs;              // tensor indices, in model order
  std::vector<int32_t> outputs;
  std::vector<Segment> segments;
  std::map<std::string, std::string> kernel_sources;  // generated OpenCL C, by name
  std::vector<uint8_t> weights;
  std::vector<DynVar> dyn_vars;           // empty: a static plan
  std::vector<DynInputDim> dyn_inputs;
  std::vector<DynExpr> dyn_exprs;
  // Subgraphs of control-flow nodes. A node of graph g (the main graph counts as -1) may own
  // only graphs with larger indices, so ownership is a tree and nothing recurses.
  std::vector<PlanGraph> graphs;

  bool is_dynamic() const { return !dyn_vars.empty(); }
  int32_t find_tensor(const std::string& name) const;
  const uint8_t* weight_data(const PlanTensor& t) const { return weights.data() + t.weight_offset; }
};

// Value of `e` with the variables at `vars` (one per dyn_var); false on int64 overflow, a
// divisor that is not positive or an atom index out of range (verify_plan refuses those first).
bool eval_dyn_expr(const std::vector<DynVar>& dyn_vars, const DynExpr& e, const int64_t* vars, int64_t* out);

// Splits the node list into segments by backend and records cross-backend reads.
std::vector<Segment> compute_segments(const Plan& plan);

}  // namespace kiln
