// OpenCL kernels of the movement family (runtime forms: runtime/backends/cpu/movement.cpp).
// Transpose/Concat/Split/Slice/Expand/Tile run as strided-copy pieces: a contiguous piece is a
// clEnqueueCopyBuffer (a kernel on GPUs: see device_copy_by_kernel), any other one
// kernels/strided_copy.cl on elements widened up to 16 bytes. Pad, Gather and Resize have their own kernels. Index math is 32-bit, so supports()
// leaves tensors of 2^31 or more elements, or boxes of rank > 8, to the CPU.
#include <cstdlib>
#include <limits>
#include <string>

#include "runtime/backends/movement_layout.h"
#include "runtime/backends/movement_resize.h"
#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/opencl/device_copy.h"
#include "runtime/backends/opencl/device_errors.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

constexpr int64_t kMaxIndex = std::numeric_limits<cl_int>::max();

const char* uint_type(int64_t bytes) {
  switch (bytes) {
    case 1: return "uchar";
    case 2: return "ushort";
    case 4: return "uint";
    case 8: return "ulong";
    case 16: return "uint4";
    default: return nullptr;
  }
}

std::string where(const ClKernelArgs& a) { return "node '" + a.node.name + "' (" + a.node.op + ")"; }

Status get_kernel(ClKernelArgs& a, const char* file, const std::string& options, const char* fn, cl_kernel* k) {
  const char* src = embedded_kernel_source(file);
  if (!src) return internal_error(std::string("kernels/") + file + ".cl is not embedded");
  return a.cl.kernel(src, options, fn, k);
}

std::vector<Shape> shapes_of(const std::vector<ClTensor>& ts) {
  std::vector<Shape> s;
  for (const ClTensor& t : ts) s.push_back(t.shape);
  return s;
}

// Every tensor of the node small enough for 32-bit element indices, and of rank <= 8.
bool fits(const PlanNode& n, const Plan& p) {
  for (const auto* list : {&n.inputs, &n.outputs})
    for (int32_t t : *list) {
      if (t < 0) continue;
      const PlanTensor& pt = p.tensors[t];
      if (pt.shape.size() > static_cast<size_t>(kClMaxDims) || shape_numel(pt.shape) > kMaxIndex) return false;
      if (dtype_size(pt.dtype) == 0 || dtype_size(pt.dtype) > 8) return false;
    }
  return true;
}

bool piecewise_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  if (!fits(n, p)) return false;
  std::vector<Shape> ins, outs;
  for (int32_t t : n.inputs) ins.push_back(t >= 0 ? p.tensors[t].shape : Shape{});
  for (int32_t t : n.outputs) outs.push_back(p.tensors[t].shape);
  std::vector<CopyPiece> pieces;
  if (!movement_pieces(n, ins, outs, static_cast<int64_t>(dtype_size(p.tensors[n.outputs[0]].dtype)), &pieces))
    return false;
  for (CopyPiece& pc : pieces) {
    pc.simplify();
    if (pc.dims.size() > static_cast<size_t>(kClMaxDims)) return false;  // Tile of rank > 4 may get here
  }
  return true;
}

// Runs a piece whose innermost destination dim is strided in the source while another dim is
// contiguous there through the local-memory tiled kernel; false (nothing enqueued) otherwise.
// On the H100, clEnqueueCopyBuffer between device buffers kept kernels of other contexts' queues
// from overlapping (the attention block at concurrency 4 ran no faster than at 1); a copy
// kernel does not. KILN_DEVICE_COPY_KERNEL=1 takes the kernel path on any device (tests on PoCL).
bool device_copy_by_kernel(const ClRuntime& cl) {
  static const bool forced = [] {
    const char* e = std::getenv("KILN_DEVICE_COPY_KERNEL");
    return e && std::string(e) == "1";
  }();
  return forced || (cl.info().caps.device_type & CL_DEVICE_TYPE_GPU) != 0;
}

template <typename In, typename Out>
Status run_copy_pieces(ClKernelArgs& a, std::vector<CopyPiece>& pieces, In in_of, Out out_of);

Status try_transpose_tiled(ClKernelArgs& a, CopyPiece p, cl_mem in, cl_mem out, bool* done) {
  *done = false;
  const size_t r = p.dims.size();
  const char* type = uint_type(p.elem_size);
  if (r < 2 || !type || p.elem_size > 8 || p.out_strides[r - 1] != 1 || p.in_strides[r - 1] == 1) return Status::ok();
  size_t j = r;
  for (size_t d = 0; d + 1 < r; ++d)
    if (p.in_strides[d] == 1) j = d;
  if (j == r || p.dims[j] < 4 || p.dims[r - 1] < 4) return Status::ok();
  std::swap(p.dims[j], p.dims[r - 2]);
  std::swap(p.in_strides[j], p.in_strides[r - 2]);
  std::swap(p.out_strides[j], p.out_strides[r - 2]);
  const std::vector<int64_t> od(p.dims.begin(), p.dims.end() - 2), ois(p.in_strides.begin(), p.in_strides.end() - 2),
      oos(p.out_strides.begin(), p.out_strides.end() - 2);
  cl_kernel k;
  KILN_TRY(get_kernel(a, "strided_copy", std::string("-DT=") + type, "transpose_tiled", &k));
  const int64_t na = p.dims[r - 2], nb = p.dims[r - 1];
  const size_t local[3] = {16, 16, 1};
  const size_t global[3] = {ClRuntime::round_up(static_cast<size_t>(nb), 16), ClRuntime::round_up(static_cast<size_t>(na), 16),
                            static_cast<size_t>(shape_numel(od))};
  KILN_TRY(ClLaunch(a.cl, k, "transpose_tiled")
               .mem(in)
               .mem(out)
               .arg(static_cast<cl_int>(na))
               .arg(static_cast<cl_int>(nb))
               .arg(static_cast<cl_int>(p.in_strides[r - 1]))
               .arg(static_cast<cl_int>(p.out_strides[r - 2]))
               .arg(static_cast<cl_int>(od.size()))
               .arg(cl_dims(od))
               .arg(cl_dims(ois))
               .arg(cl_dims(oos))
               .arg(static_cast<cl_int>(p.in_offset))
               .arg(static_cast<cl_int>(p.out_offset))
               .run(3, global, local));
  *done = true;
  return Status::ok();
}

Status run_pieces(ClKernelArgs& a, std::vector<CopyPiece> pieces) {
  return run_copy_pieces(a, pieces, [&](const CopyPiece& p) { return a.inputs[p.input].mem; },
                         [&](const CopyPiece& p) { return a.outputs[p.output].mem; });
}

template <typename In, typename Out>
Status run_copy_pieces(ClKernelArgs& a, std::vector<CopyPiece>& pieces, In in_of, Out out_of) {
  for (CopyPiece& p : pieces) {
    p.simplify();
    if (p.numel() == 0) continue;
    const cl_mem in = in_of(p), out = out_of(p);
    if (p.contiguous() && !device_copy_by_kernel(a.cl)) {
      const size_t es = static_cast<size_t>(p.elem_size);
      KILN_CL(clEnqueueCopyBuffer(a.cl.queue(), in, out, static_cast<size_t>(p.in_offset) * es,
                                  static_cast<size_t>(p.out_offset) * es, static_cast<size_t>(p.numel()) * es, 0,
                                  nullptr, nullptr),
              "copying for " + where(a));
      continue;
    }
    bool tiled;
    KILN_TRY(try_transpose_tiled(a, p, in, out, &tiled));
    if (tiled) continue;
    p.widen(16);
    const char* type = uint_type(p.elem_size);
    if (!type || p.dims.size() > static_cast<size_t>(kClMaxDims))
      return internal_error(where(a) + ": copy of rank " + std::to_string(p.dims.size()) + " is not supported on OpenCL");
    cl_kernel k;
    KILN_TRY(get_kernel(a, "strided_copy", std::string("-DT=") + type, "strided_copy", &k));
    const cl_int n = static_cast<cl_int>(p.numel());
    KILN_TRY(ClLaunch(a.cl, k, "strided_copy")
                 .mem(in)
                 .mem(out)
                 .arg(static_cast<cl_int>(p.dims.size()))
                 .arg(cl_dims(p.dims))
                 .arg(cl_dims(p.in_strides))
                 .arg(cl_dims(p.out_strides))
                 .arg(static_cast<cl_int>(p.in_offset))
                 .arg(static_cast<cl_int>(p.out_offset))
                 .arg(n)
                 .run1d(static_cast<size_t>(n), 64));
  }
  return Status::ok();
}

Status piecewise_cl(ClKernelArgs& a) {
  std::vector<CopyPiece> pieces;
  KILN_TRY(movement_pieces(a.node, shapes_of(a.inputs), shapes_of(a.outputs),
                           static_cast<int64_t>(dtype_size(a.outputs[0].dtype)), &pieces));
  return run_pieces(a, std::move(pieces));
}

bool fits_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) { return fits(n, p); }

Status pad_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  const ClTensor& y = a.outputs[0];
  const std::vector<int64_t> pads = a.attrs().get_ints("pads");
  const size_t r = y.shape.size();
  if (pads.size() != 2 * r || x.shape.size() != r) return invalid_plan(where(a) + ": pads do not match the rank");
  for (size_t d = 0; d < r; ++d)
    if (y.shape[d] != x.shape[d] + pads[d] + pads[r + d] || (x.shape[d] == 0 && y.shape[d] > 0))
      return invalid_plan(where(a) + ": pads do not match the shapes");
  const char* type = uint_type(static_cast<int64_t>(dtype_size(y.dtype)));
  if (!type) return unsupported(where(a) + ": element size not supported on OpenCL");
  cl_kernel k;
  KILN_TRY(get_kernel(a, "pad", std::string("-DT=") + type, "pad", &k));
  const bool has_value = a.has_input(1);
  const cl_int n = static_cast<cl_int>(y.numel());
  return ClLaunch(a.cl, k, "pad")
      .mem(x.mem)
      .mem(y.mem)
      .mem(has_value ? a.inputs[1].mem : x.mem)  // any valid buffer when unused
      .arg(static_cast<cl_int>(has_value))
      .arg(static_cast<cl_int>(r))
      .arg(cl_dims(y.shape))
      .arg(cl_dims(x.shape))
      .arg(cl_dims(shape_strides(x.shape)))
      .arg(cl_dims(std::vector<int64_t>(pads.begin(), pads.begin() + r)))
      .arg(static_cast<cl_int>(a.attrs().get_int("mode_id", 0)))
      .arg(n)
      .run1d(static_cast<size_t>(n), 64);
}

Status gather_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  const ClTensor& ind = a.inputs[1];
  const ClTensor& y = a.outputs[0];
  const int64_t axis = a.attrs().get_int("axis", 0);
  if (axis < 0 || axis >= static_cast<int64_t>(x.shape.size())) return invalid_plan(where(a) + ": axis out of range");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (size_t d = axis + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  // Whole rows move, so widen the element as far as the row length allows.
  int64_t es = static_cast<int64_t>(dtype_size(x.dtype));
  while (es < 16 && inner % 2 == 0) es *= 2, inner /= 2;
  const char* type = uint_type(es);
  if (!type) return unsupported(where(a) + ": element size not supported on OpenCL");
  cl_kernel k;
  const std::string opts = std::string("-DT=") + type + " -DIDX=" + (ind.dtype == DType::kInt64 ? "long" : "int");
  KILN_TRY(get_kernel(a, "gather", opts, "gather", &k));
  const int64_t total = outer * ind.numel() * inner;
  if (total * es != y.numel() * static_cast<int64_t>(dtype_size(y.dtype))) return invalid_plan(where(a) + ": output does not match");
  cl_mem err;
  KILN_TRY(device_error_flag(a.cl, &err));
  return ClLaunch(a.cl, k, "gather")
      .mem(x.mem)
      .mem(ind.mem)
      .mem(y.mem)
      .arg(static_cast<cl_int>(inner))
      .arg(static_cast<cl_int>(ind.numel()))
      .arg(static_cast<cl_int>(x.shape[axis]))
      .arg(static_cast<cl_int>(total))
      .mem(err)
      .arg(static_cast<cl_int>(a.node_index))
      .run1d(static_cast<size_t>(total), 64);
}

bool gather_supports(const PlanNode& n, const Plan& p, const DeviceCaps& caps) {
  if (n.inputs.size() < 2 || n.inputs[1] < 0) return false;
  const DType it = p.tensors[n.inputs[1]].dtype;
  return (it == DType::kInt32 || it == DType::kInt64) && fits(n, p);
}

Status resize_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  const ClTensor& y = a.outputs[0];
  // Looked up by content on every launch: the prefixed source is built once.
  static const std::string src = std::string(embedded_kernel_source("float_storage")) + embedded_kernel_source("resize");
  // Both kernels (repeat and table-driven) are built for the output's rank and storage type.
  std::string opts = "-DRANK=" + std::to_string(y.shape.size());
  if (y.dtype == DType::kFloat16) opts += " -DKILN_HALF";
  if (a.node.attrs.has("repeats")) {  // nearest by whole factors: each output element copies one input
    const std::vector<int64_t> rep = a.node.attrs.get_ints("repeats");
    if (rep.size() != y.shape.size() || x.shape.size() != y.shape.size())
      return invalid_plan(where(a) + ": repeats do not match the rank");
    for (size_t d = 0; d < rep.size(); ++d)
      if (rep[d] < 1 || x.shape[d] * rep[d] != y.shape[d])
        return invalid_plan(where(a) + ": output is not the input repeated by the node's repeats");
    if (y.numel() == 0) return Status::ok();
    cl_kernel k;
    KILN_TRY(a.cl.kernel(src, opts, "resize_repeat", &k));
    const cl_int n = static_cast<cl_int>(y.numel());
    return ClLaunch(a.cl, k, "resize_repeat")
        .mem(x.mem)
        .mem(y.mem)
        .arg(cl_dims(y.shape))
        .arg(cl_dims(shape_strides(x.shape)))
        .arg(cl_dims(rep))
        .arg(n)
        .run1d(static_cast<size_t>(n), 64);
  }
  std::vector<int64_t> taps, offsets;
  int64_t entries = 0;
  KILN_TRY(resize_table_layout(a.node, y.shape, &taps, &offsets, &entries));
  if (x.shape.size() != y.shape.size() || a.inputs.size() < 3 || a.inputs[1].numel() != entries ||
      a.inputs[2].numel() != entries)
    return invalid_plan(where(a) + ": interpolation tables do not match the shapes");
  cl_kernel k;
  KILN_TRY(a.cl.kernel(src, opts, "resize", &k));
  const cl_int n = static_cast<cl_int>(y.numel());
  return ClLaunch(a.cl, k, "resize")
      .mem(x.mem)
      .mem(a.inputs[1].mem)
      .mem(a.inputs[2].mem)
      .mem(y.mem)
      .arg(cl_dims(y.shape))
      .arg(cl_dims(shape_strides(x.shape)))
      .arg(cl_dims(taps))
      .arg(cl_dims(offsets))
      .arg(a.attrs().get_float("extrapolation_value", 0.f))
      .arg(n)
      .run1d(static_cast<size_t>(n), 64);
}

bool resize_supports(const PlanNode& n, const Plan& p, const DeviceCaps& caps) {
  const DType dt = p.tensors[n.inputs[0]].dtype;
  if (!fits(n, p) || (dt != DType::kFloat32 && dt != DType::kFloat16) || p.tensors[n.outputs[0]].dtype != dt) return false;
  if (n.attrs.has("repeats")) return true;  // table-free; the launcher checks the shapes
  // The plan's tables are trusted on the device only when they index inside the input (the
  // kernel does not bounds-check): verify them here, once, from the plan constants.
  if (n.inputs.size() < 3 || n.inputs[1] < 0 || n.inputs[2] < 0) return false;
  const PlanTensor& ti = p.tensors[n.inputs[1]];
  const PlanTensor& tw = p.tensors[n.inputs[2]];
  if (ti.kind != TensorKind::kConstant || tw.kind != TensorKind::kConstant) return false;
  TensorView vi{ti.dtype, ti.shape, const_cast<uint8_t*>(p.weight_data(ti))};
  TensorView vw{tw.dtype, tw.shape, const_cast<uint8_t*>(p.weight_data(tw))};
  ResizeTables t;
  return resize_tables_from_inputs(n, p.tensors[n.inputs[0]].shape, p.tensors[n.outputs[0]].shape, vi, vw, &t).is_ok();
}

}  // namespace

Status cl_device_copy(ClKernelArgs& a, cl_mem in, cl_mem out, size_t bytes) {
  if (bytes == 0 || in == out) return Status::ok();
  if (!device_copy_by_kernel(a.cl)) return a.cl.copy(in, out, bytes, a.node.op + " '" + a.node.name + "'");
  CopyPiece p;
  p.dims = {static_cast<int64_t>(bytes)};
  p.in_strides = p.out_strides = {1};
  p.elem_size = 1;
  std::vector<CopyPiece> pieces = {p};
  return run_copy_pieces(a, pieces, [&](const CopyPiece&) { return in; }, [&](const CopyPiece&) { return out; });
}

void register_movement_opencl(ClRegistry& r) {
  for (const char* op : {"Transpose", "Concat", "Split", "Slice", "Expand", "Tile"})
    r.add(op, piecewise_cl, piecewise_supports);
  r.add("Pad", pad_cl, fits_supports);
  r.add("Gather", gather_cl, gather_supports);
  r.add("Resize", resize_cl, resize_supports);
}

}  // namespace kiln
