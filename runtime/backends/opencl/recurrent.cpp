// OpenCL RNN, GRU and LSTM (kernels/recurrent.cl): the input projection of every step in one
// parallel launch, then the recurrence in one launch with a work-group per (direction, batch
// item). Declined (left to the CPU): non-float32 operands, element counts beyond int indexing,
// a projection larger than one buffer, and hidden sizes whose state does not fit local memory.
#include <algorithm>
#include <vector>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/recurrent_geometry.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

using rnngeo::Cell;

// Mirrors the structs of kernels/recurrent.cl.
struct RnnActs {
  cl_int code[6];
  cl_float alpha[6];
  cl_float beta[6];
};
struct RnnShape {
  cl_int seq, batch, input, hidden, dirs, mode, layout, flags;
  cl_float clip;
};
enum Flags : cl_int {
  kBias = 1, kLens = 2, kH0 = 4, kC0 = 8, kPeep = 16, kY = 32, kYh = 64, kYc = 128, kClip = 256, kLbr = 512,
  kInputForget = 1024,
};

// Local memory the kernel takes: two hidden-state buffers, the cell state and GRU's reset gate.
uint64_t local_bytes(int64_t hidden) { return static_cast<uint64_t>(4 * hidden) * sizeof(float); }

constexpr int kScratchProjection = 0x21;  // ClRuntime::scratch slot of the input projection
// Elements of the input projection: every gate of every step of every item, per direction.
size_t projection_elems(Cell cell, const rnngeo::Geometry& g) {
  return static_cast<size_t>(g.dirs * g.seq * g.batch * rnngeo::gates(cell) * g.hidden);
}

bool recurrent_supports(const PlanNode& n, const Plan& p, const DeviceCaps& caps) {
  const Cell cell = rnngeo::cell_of(n.op);
  std::vector<Shape> in, out;
  std::vector<bool> present;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const int32_t t = n.inputs[i];
    present.push_back(t >= 0);
    in.push_back(t >= 0 ? p.tensors[t].shape : Shape{});
    if (t >= 0 && p.tensors[t].dtype != (i == 4 ? DType::kInt32 : DType::kFloat32)) return false;
    if (t >= 0 && shape_numel(p.tensors[t].shape) >= (int64_t{1} << 31)) return false;
  }
  for (int32_t t : n.outputs) {
    if (p.tensors[t].dtype != DType::kFloat32 || shape_numel(p.tensors[t].shape) >= (int64_t{1} << 31)) return false;
    out.push_back(p.tensors[t].shape);
  }
  rnngeo::Geometry g;
  if (!rnngeo::check(cell, n.attrs, in, present, out, &g)) return false;
  // The projection is indexed with int and must fit one buffer.
  const size_t proj = projection_elems(cell, g);
  if (proj >= (size_t{1} << 31) || (caps.max_alloc_bytes && proj * sizeof(float) > caps.max_alloc_bytes)) return false;
  return caps.local_mem_bytes == 0 || local_bytes(g.hidden) <= caps.local_mem_bytes / 2;
}

Status recurrent_cl(ClKernelArgs& a) {
  const Cell cell = rnngeo::cell_of(a.node.op);
  std::vector<Shape> in, out;
  std::vector<bool> present;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    present.push_back(a.has_input(i));
    in.push_back(a.inputs[i].shape);
  }
  for (const ClTensor& o : a.outputs) out.push_back(o.shape);
  rnngeo::Geometry g;
  KILN_TRY(rnngeo::check(cell, a.attrs(), in, present, out, &g));
  const int64_t mask = a.attrs().get_int("output_mask", 0);
  const int n_act = static_cast<int>(rnngeo::activations_per_direction(cell) * g.dirs);
  RnnActs acts{};
  for (int i = 0; i < n_act; ++i) {
    acts.code[i] = static_cast<cl_int>(g.acts[i]);
    acts.alpha[i] = g.alpha[i];
    acts.beta[i] = g.beta[i];
  }
  cl_int flags = 0;
  auto input = [&](size_t i, cl_int flag) -> cl_mem {
    if (!a.has_input(i)) return a.inputs[0].mem;  // some drivers reject null buffer arguments
    flags |= flag;
    return a.inputs[i].mem;
  };
  auto output = [&](int i, cl_int flag) -> cl_mem {
    const int slot = rnngeo::output_slot(mask, i);
    if (slot < 0) return a.inputs[0].mem;  // never written: its flag stays clear
    flags |= flag;
    return a.outputs[slot].mem;
  };
  const bool lstm = cell == Cell::kLstm;
  cl_mem bias = input(3, kBias), lens = input(4, kLens), h0 = input(5, kH0);
  cl_mem c0 = lstm ? input(6, kC0) : a.inputs[0].mem, peep = lstm ? input(7, kPeep) : a.inputs[0].mem;
  cl_mem y = output(0, kY), y_h = output(1, kYh), y_c = lstm ? output(2, kYc) : a.inputs[0].mem;
  if (g.has_clip) flags |= kClip;
  if (a.attrs().get_int("linear_before_reset", 0)) flags |= kLbr;
  if (a.attrs().get_int("input_forget", 0)) flags |= kInputForget;
  const RnnShape shape{static_cast<cl_int>(g.seq),    static_cast<cl_int>(g.batch),
                       static_cast<cl_int>(g.input),  static_cast<cl_int>(g.hidden),
                       static_cast<cl_int>(g.dirs),   static_cast<cl_int>(g.mode),
                       static_cast<cl_int>(g.layout), flags,
                       g.clip};
  const size_t groups = static_cast<size_t>(g.dirs * g.batch);
  if (groups == 0) return Status::ok();
  if (a.has_input(4)) {
    // The flat launch list is recorded before the inference's values are on the device: the
    // lengths cannot be read then, so such a node is never recorded (it runs as usual).
    if (a.cl.decline_recording()) return Status::ok();
    // Out-of-range lengths are an error on the CPU too; the kernel must not index past X. A
    // blocking read of batch ints, only for the (rare) nodes given sequence_lens.
    std::vector<int32_t> lens_host(static_cast<size_t>(g.batch));
    KILN_TRY(a.cl.download(a.inputs[4].mem, lens_host.data(), lens_host.size() * sizeof(int32_t), "sequence_lens"));
    for (size_t b = 0; b < lens_host.size(); ++b)
      if (lens_host[b] < 0 || lens_host[b] > g.seq)
        return invalid_argument("node '" + a.node.name + "': sequence_lens[" + std::to_string(b) + "] = " +
                                std::to_string(lens_host[b]) + " is outside [0, " + std::to_string(g.seq) + "]");
  }
  const char* src = embedded_kernel_source("recurrent");
  if (!src) return internal_error("kernel source recurrent.cl is not embedded");
  const std::string options = "-DCELL=" + std::to_string(static_cast<int>(cell));
  // The input projection of every step first, into scratch memory (all of it in parallel).
  const size_t proj_elems = projection_elems(cell, g);
  cl_mem proj;
  KILN_TRY(a.cl.scratch(kScratchProjection, proj_elems * sizeof(float), &proj, "input projection of node '" +
                                                                                   a.node.name + "'"));
  cl_kernel pk, k;
  KILN_TRY(a.cl.kernel(src, options, "recurrent_project", &pk).with_context("node '" + a.node.name + "'"));
  KILN_TRY(ClLaunch(a.cl, pk, "recurrent_project")
               .mem(a.inputs[0].mem).mem(a.inputs[1].mem).mem(bias).mem(proj).arg(shape)
               .run1d(proj_elems, 64));
  KILN_TRY(a.cl.kernel(src, options, "recurrent", &k).with_context("node '" + a.node.name + "'"));
  size_t max_wg = 0;
  if (clGetKernelWorkGroupInfo(k, a.cl.device(), CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, nullptr) !=
          CL_SUCCESS ||
      max_wg == 0)
    max_wg = 64;
  // One work-item per hidden unit, up to what the device allows (then several units each).
  size_t ls = 1;
  while (ls < static_cast<size_t>(g.hidden) && ls * 2 <= std::min<size_t>(max_wg, 256)) ls *= 2;
  const size_t global = groups * ls;
  const size_t hbytes = static_cast<size_t>(g.hidden) * sizeof(float);
  return ClLaunch(a.cl, k, "recurrent")
      .mem(proj).mem(a.inputs[2].mem).mem(bias).mem(lens).mem(h0).mem(c0).mem(peep)
      .mem(y).mem(y_h).mem(y_c).arg(shape).arg(acts).local(2 * hbytes).local(hbytes).local(hbytes)
      .run(1, &global, &ls);
}

}  // namespace

void register_recurrent_opencl(ClRegistry& r) {
  r.add("RNN", recurrent_cl, recurrent_supports);
  r.add("GRU", recurrent_cl, recurrent_supports);
  r.add("LSTM", recurrent_cl, recurrent_supports);
}

}  // namespace kiln
