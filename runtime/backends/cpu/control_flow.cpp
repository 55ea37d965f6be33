// If, Loop and Scan on the CPU: each runs its subgraphs through the executor's SubgraphRunner
// and copies values in and out of them. The plan was verified (subgraph indices, captures), but
// each kernel still checks what it assumes of its subgraphs' inputs and outputs before copying.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

constexpr int64_t kMaxIterations = int64_t{1} << 31;

Status no_runner(const CpuKernelArgs& a) {
  if (a.subgraphs) return Status::ok();
  return unsupported(a.node.op + " runs subgraphs and cannot be evaluated outside an execution context");
}

Status subgraph(const CpuKernelArgs& a, size_t slot, const PlanGraph** out) {
  *out = slot < a.node.subgraphs.size() ? a.subgraphs->graph(a.node.subgraphs[slot]) : nullptr;
  if (!*out) return invalid_plan(a.node.op + " lacks its subgraph " + std::to_string(slot));
  return Status::ok();
}

// Copies a subgraph result into `dst`, which must have its dtype and element count.
Status copy_value(const TensorView& src, const TensorView& dst, const std::string& what) {
  if (src.dtype != dst.dtype || src.numel() != dst.numel())
    return invalid_plan(what + " is " + dtype_name(src.dtype) + " " + shape_str(src.shape) + " but its destination is " +
                        dtype_name(dst.dtype) + " " + shape_str(dst.shape));
  if (src.data != dst.data && src.bytes()) std::memmove(dst.data, src.data, src.bytes());
  return Status::ok();
}

// A host copy of a subgraph input's type, for values the kernel feeds it (state, slices).
HostTensor scratch_for(const PlanGraph& g, size_t input) {
  const PlanTensor& t = g.tensors[g.inputs[input]];
  return HostTensor(t.dtype, t.shape);
}

bool bool_scalar(const TensorView& v, bool* out) {
  if (v.dtype != DType::kBool || v.numel() != 1 || !v.data) return false;
  *out = *v.as<uint8_t>() != 0;
  return true;
}

Status if_cpu(const CpuKernelArgs& a) {
  KILN_TRY(no_runner(a));
  bool cond;
  if (a.node.subgraphs.size() != 2 || a.inputs.empty() || !bool_scalar(a.inputs[0], &cond))
    return invalid_plan("If needs a bool condition and two branches");
  std::vector<TensorView> res;
  KILN_TRY(a.subgraphs->run(a.node.subgraphs[cond ? 0 : 1], a.inputs, {}, &res));
  if (res.size() != a.outputs.size())
    return invalid_plan("If branch has " + std::to_string(res.size()) + " outputs, the node " +
                        std::to_string(a.outputs.size()));
  for (size_t i = 0; i < res.size(); ++i) KILN_TRY(copy_value(res[i], a.outputs[i], "If output " + std::to_string(i)));
  return Status::ok();
}

// Loop: body(iteration, condition, state...) -> (condition, state..., scan slices...). The state
// goes round through two host copies (the body may return its input unchanged); scan slices
// stack into the outputs, whose first dim is the trip count known at build time.
Status loop_cpu(const CpuKernelArgs& a) {
  KILN_TRY(no_runner(a));
  const PlanGraph* body;
  KILN_TRY(subgraph(a, 0, &body));
  if (body->inputs.size() < 2 || body->outputs.size() + 1 < body->inputs.size())
    return invalid_plan("Loop body has " + std::to_string(body->inputs.size()) + " inputs and " +
                        std::to_string(body->outputs.size()) + " outputs");
  const size_t n_state = body->inputs.size() - 2, n_scan = body->outputs.size() - 1 - n_state;
  if (a.inputs.size() < 2 + n_state || a.outputs.size() != n_state + n_scan)
    return invalid_plan("Loop node's operands do not match its body");
  // Left out means no operand (-1), not no data: a present trip count or condition of zero
  // elements has a null data pointer, and taken as left out it made the loop unbounded.
  auto given = [&a](size_t i) { return i < a.node.inputs.size() && a.node.inputs[i] >= 0 && i < a.inputs.size(); };
  int64_t trips = std::numeric_limits<int64_t>::max();
  if (given(0)) {
    if (a.inputs[0].numel() != 1 || !dtype_is_integer(a.inputs[0].dtype))
      return invalid_argument("Loop trip count must be one integer");
    trips = tensor_int_at(a.inputs[0], 0);
  }
  bool cond = true;
  if (given(1) && !bool_scalar(a.inputs[1], &cond)) return invalid_argument("Loop condition must be one bool");
  HostTensor iter = scratch_for(*body, 0), cond_in = scratch_for(*body, 1);
  if (iter.dtype() != DType::kInt64 || iter.numel() != 1 || cond_in.dtype() != DType::kBool || cond_in.numel() != 1)
    return invalid_plan("Loop body's iteration and condition inputs must be one int64 and one bool");
  std::vector<HostTensor> cur, next;
  for (size_t i = 0; i < n_state; ++i) {
    cur.push_back(scratch_for(*body, 2 + i));
    next.push_back(scratch_for(*body, 2 + i));
    KILN_TRY(copy_value(a.inputs[2 + i], cur.back().view(), "Loop initial value " + std::to_string(i)));
  }
  int64_t planned = -1;  // scan outputs' iteration count
  if (n_scan) planned = a.outputs[n_state].shape.empty() ? 0 : a.outputs[n_state].shape[0];
  std::vector<TensorView> formal(2 + n_state), res;
  int64_t i = 0;
  for (; i < trips && cond; ++i) {
    // A loop the model leaves to its condition alone could run forever: stop at a bound no
    // real model reaches instead of hanging the inference.
    if (i == kMaxIterations)
      return invalid_argument("Loop ran " + std::to_string(kMaxIterations) + " iterations without stopping");
    if (n_scan && i >= planned)
      return invalid_argument("Loop runs more than the " + std::to_string(planned) +
                              " iterations its scan outputs were planned for");
    *iter.as<int64_t>() = i;
    *cond_in.as<uint8_t>() = cond ? 1 : 0;
    formal[0] = iter.view();
    formal[1] = cond_in.view();
    for (size_t s = 0; s < n_state; ++s) formal[2 + s] = cur[s].view();
    KILN_TRY(a.subgraphs->run(a.node.subgraphs[0], a.inputs, formal, &res));
    if (!bool_scalar(res[0], &cond)) return invalid_plan("Loop body's condition output must be one bool");
    for (size_t s = 0; s < n_state; ++s)
      KILN_TRY(copy_value(res[1 + s], next[s].view(), "Loop state " + std::to_string(s)));
    std::swap(cur, next);
    for (size_t k = 0; k < n_scan; ++k) {
      const TensorView& slice = res[1 + n_state + k];
      const TensorView& out = a.outputs[n_state + k];
      if (slice.dtype != out.dtype || static_cast<int64_t>(slice.bytes()) * planned != static_cast<int64_t>(out.bytes()))
        return invalid_plan("Loop scan output " + std::to_string(k) + " slice " + shape_str(slice.shape) +
                            " does not fit " + shape_str(out.shape));
      if (slice.bytes()) std::memcpy(static_cast<uint8_t*>(out.data) + i * slice.bytes(), slice.data, slice.bytes());
    }
  }
  if (n_scan && i != planned)
    return invalid_argument("Loop stopped after " + std::to_string(i) + " iterations but its scan outputs were planned "
                            "for " + std::to_string(planned) + " (the trip count known at build time); kiln plans "
                            "are statically shaped");
  for (size_t s = 0; s < n_state; ++s)
    KILN_TRY(copy_value(cur[s].view(), a.outputs[s], "Loop output " + std::to_string(s)));
  return Status::ok();
}

// Copies slice `index` along `axis` between a tensor and its slice (rank one less). `gather`:
// tensor -> slice, else slice -> tensor.
void move_slice(const TensorView& full, int64_t axis, int64_t index, void* slice, bool gather) {
  int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(full.dtype));
  for (int64_t d = 0; d < axis; ++d) outer *= full.shape[d];
  for (size_t d = static_cast<size_t>(axis) + 1; d < full.shape.size(); ++d) inner *= full.shape[d];
  const int64_t len = full.shape[axis];
  auto* f = static_cast<uint8_t*>(full.data);
  auto* s = static_cast<uint8_t*>(slice);
  for (int64_t o = 0; o < outer; ++o) {
    uint8_t* fp = f + (o * len + index) * inner;
    uint8_t* sp = s + o * inner;
    if (gather) std::memcpy(sp, fp, inner);
    else std::memcpy(fp, sp, inner);
  }
}

// One batch item of a (possibly batched) tensor: the whole tensor, or item b of dim 0.
TensorView item(const TensorView& v, bool batched, int64_t b) {
  if (!batched) return v;
  TensorView r{v.dtype, Shape(v.shape.begin() + 1, v.shape.end()), nullptr};
  r.data = static_cast<uint8_t*>(v.data) + b * r.bytes();
  return r;
}

// Scan (canonical form, see compiler/ops/control_flow.cpp): state values and scan inputs in,
// final state and stacked per-iteration outputs out; Scan-8 (batched=1) does this per item of
// the leading batch dim, each item for its sequence_lens entry of steps (outputs past it are 0).
Status scan_cpu(const CpuKernelArgs& a) {
  KILN_TRY(no_runner(a));
  const PlanGraph* body;
  KILN_TRY(subgraph(a, 0, &body));
  const Attributes& at = a.attrs();
  const int64_t m = at.get_int("num_scan_inputs", 0);
  const bool batched = at.get_int("batched", 0) != 0;
  const size_t first = batched ? 1 : 0;
  if (m < 1 || static_cast<size_t>(m) > body->inputs.size())
    return invalid_plan("Scan num_scan_inputs does not match its body");
  const size_t n_state = body->inputs.size() - m;
  if (body->outputs.size() < n_state) return invalid_plan("Scan body has fewer outputs than state values");
  const size_t n_out = body->outputs.size() - n_state;
  const std::vector<int64_t> in_axes = at.get_ints("scan_input_axes"), in_dirs = at.get_ints("scan_input_directions");
  const std::vector<int64_t> out_axes = at.get_ints("scan_output_axes"),
                             out_dirs = at.get_ints("scan_output_directions");
  if (a.inputs.size() < first + body->inputs.size() || a.outputs.size() != body->outputs.size() ||
      in_axes.size() != static_cast<size_t>(m) || in_dirs.size() != static_cast<size_t>(m) ||
      out_axes.size() != n_out || out_dirs.size() != n_out)
    return invalid_plan("Scan node's operands or attributes do not match its body");
  for (size_t i = first; i < first + body->inputs.size(); ++i)
    if (!a.has_input(i) || (batched && (a.inputs[i].shape.empty() || a.inputs[i].shape[0] != a.inputs[first].shape[0])))
      return invalid_plan("Scan input " + std::to_string(i) + " is missing or lacks the batch dim");
  const int64_t batch = batched ? a.inputs[first].shape[0] : 1;
  std::vector<HostTensor> cur, next, slices;
  for (size_t i = 0; i < n_state; ++i) {
    cur.push_back(scratch_for(*body, i));
    next.push_back(scratch_for(*body, i));
  }
  for (int64_t j = 0; j < m; ++j) slices.push_back(scratch_for(*body, n_state + j));
  std::vector<TensorView> formal(body->inputs.size()), res;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<TensorView> ins, outs;
    for (int64_t j = 0; j < m; ++j) {
      ins.push_back(item(a.inputs[first + n_state + j], batched, b));
      const TensorView& v = ins.back();
      if (in_axes[j] < 0 || in_axes[j] >= static_cast<int64_t>(v.shape.size()) ||
          v.shape.size() != slices[j].shape().size() + 1 || v.numel() != v.shape[in_axes[j]] * slices[j].numel())
        return invalid_plan("Scan input " + std::to_string(j) + " does not match its body's slice");
    }
    const int64_t len = ins[0].shape[in_axes[0]];
    for (int64_t j = 1; j < m; ++j)
      if (ins[j].shape[in_axes[j]] != len) return invalid_plan("Scan inputs differ in sequence length");
    int64_t steps = len;
    if (batched && a.has_input(0)) {
      if (a.inputs[0].numel() != batch || !dtype_is_integer(a.inputs[0].dtype))
        return invalid_argument("Scan sequence_lens must hold one integer per batch item");
      steps = tensor_int_at(a.inputs[0], b);
      if (steps < 0 || steps > len)
        return invalid_argument("Scan sequence_lens[" + std::to_string(b) + "] = " + std::to_string(steps) +
                                " is outside [0, " + std::to_string(len) + "]");
    }
    for (size_t k = 0; k < n_out; ++k) {
      outs.push_back(item(a.outputs[n_state + k], batched, b));
      const TensorView& v = outs.back();
      if (out_axes[k] < 0 || out_axes[k] >= static_cast<int64_t>(v.shape.size()) || v.shape[out_axes[k]] != len)
        return invalid_plan("Scan output " + std::to_string(k) + " does not match the sequence length");
      if (steps < len) std::memset(v.data, 0, v.bytes());
    }
    for (size_t s = 0; s < n_state; ++s)
      KILN_TRY(copy_value(item(a.inputs[first + s], batched, b), cur[s].view(), "Scan initial state " + std::to_string(s)));
    for (int64_t t = 0; t < steps; ++t) {
      for (int64_t j = 0; j < m; ++j)
        move_slice(ins[j], in_axes[j], in_dirs[j] ? steps - 1 - t : t, slices[j].data(), true);
      for (size_t s = 0; s < n_state; ++s) formal[s] = cur[s].view();
      for (int64_t j = 0; j < m; ++j) formal[n_state + j] = slices[j].view();
      KILN_TRY(a.subgraphs->run(a.node.subgraphs[0], a.inputs, formal, &res));
      for (size_t s = 0; s < n_state; ++s) KILN_TRY(copy_value(res[s], next[s].view(), "Scan state " + std::to_string(s)));
      std::swap(cur, next);
      for (size_t k = 0; k < n_out; ++k) {
        const TensorView& r = res[n_state + k];
        if (r.dtype != outs[k].dtype || r.numel() * len != outs[k].numel())
          return invalid_plan("Scan output " + std::to_string(k) + " slice " + shape_str(r.shape) + " does not fit " +
                              shape_str(outs[k].shape));
        move_slice(outs[k], out_axes[k], out_dirs[k] ? steps - 1 - t : t, r.data, false);
      }
    }
    for (size_t s = 0; s < n_state; ++s)
      KILN_TRY(copy_value(cur[s].view(), item(a.outputs[s], batched, b), "Scan output " + std::to_string(s)));
  }
  return Status::ok();
}

}  // namespace

// Operands: If needs its condition; Loop has the positions of M and cond, both optional;
// Scan has at least one (Scan-8: sequence_lens, optional). Every node has an output (nodes
// whose outputs nothing reads are removed). The kernels check the rest against the subgraphs.
// Cost: one per output element (what the subgraphs compute depends on the values).
void register_control_flow_cpu(CpuRegistry& r) {
  r.add("If", if_cpu).arity(1, 1);
  r.add("Loop", loop_cpu).arity(2, 1, 2);
  r.add("Scan", scan_cpu).arity(1, 1, 1);
}

}  // namespace kiln
