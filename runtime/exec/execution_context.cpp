#include "runtime/exec/execution_context.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "runtime/backends/cpu/cpu_threads.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/core/alloc_stats.h"
#include "runtime/core/fault_injection.h"
#include "runtime/backends/opencl/device_errors.h"
#include "runtime/exec/arena_poison.h"
#include "runtime/exec/device_weights.h"
#include "runtime/exec/memory_plan.h"
#include "runtime/exec/subgraph_runner.h"
#include "runtime/profile/profiler.h"
#include "runtime/plan/partition.h"
#include "runtime/plan/plan_format.h"
#include "runtime/plan/plan_memory.h"
#include "runtime/plan/plan_verifier.h"

namespace kiln {

std::vector<Backend> node_backends_for(const Plan& plan, const ResolvedDevice& device) {
  if (device.backend == Backend::kOpenCL && plan.target.kind == "opencl") {
    std::vector<Backend> out;
    for (const PlanNode& n : plan.nodes) out.push_back(n.backend);
    return out;
  }
  return partition_nodes(plan, device.caps);
}

Status check_device_compatible(const Plan& plan, const ResolvedDevice& device, std::string* notice) {
  notice->clear();
  const DeviceCaps& t = plan.target;
  if (device.backend == Backend::kCpu) {
    if (t.kind != "cpu")
      *notice = "plan was built for " + t.kind + " device '" + t.name +
                "'; running every node on the cpu backend instead";
    return Status::ok();
  }
  const std::vector<std::string> have = device_capabilities(device.caps);
  if (t.kind == "opencl") {
    for (const std::string& need : plan.required_caps)
      if (std::find(have.begin(), have.end(), need) == have.end())
        return unsupported("device " + device.label + " lacks capability '" + need +
                           "' that the plan (built for '" + t.name + "') needs; rebuild the plan "
                           "for this device");
    if (t.name != device.caps.name || t.driver_version != device.caps.driver_version)
      *notice = "plan was built for '" + t.name + "' (driver " + t.driver_version +
                "); running on " + device.label + " (driver " + device.caps.driver_version +
                "), which has every capability it needs";
  } else {
    *notice = "plan was built for the cpu; running the nodes the OpenCL backend supports on " +
              device.label;
  }
  return Status::ok();
}

Status ExecutionContext::create(std::shared_ptr<const Plan> plan, const std::string& device_spec,
                                std::unique_ptr<ExecutionContext>* out, std::string* notice) {
  std::unique_ptr<ExecutionContext> ctx(new ExecutionContext());
  ctx->plan_ = std::move(plan);
  KILN_TRY(resolve_device(device_spec, &ctx->device_));
  KILN_TRY(check_device_compatible(*ctx->plan_, ctx->device_, notice));
  KILN_TRY(ctx->init());
  if (!ctx->variant_notice_.empty()) *notice += (notice->empty() ? "" : "; ") + ctx->variant_notice_;
  *out = std::move(ctx);
  return Status::ok();
}

ExecutionContext::~ExecutionContext() {
  wait_idle();
  arena_unpoison(host_arena_.get(), host_arena_bytes_);
  if (cl_ && cl_->lost()) {
    // See ClRuntime::finish: leak rather than call into a faulted driver.
    (void)cl_.release();
    (void)new std::shared_ptr<const DeviceWeights>(std::move(weights_));
    return;
  }
  if (cl_) cl_->finish().is_ok();
  for (auto& [t, h] : host_buffers_) {
    if (h.mem) cl_->unmap_pinned(h.mem, h.data);
    else std::free(h.data);
  }
  for (size_t t = 0; t < device_input_.size(); ++t)
    if (device_input_[t]) clReleaseMemObject(dev_[t]);
  for (cl_mem m : dev_buffers_)
    if (m) clReleaseMemObject(m);
}

Status ExecutionContext::init() {
  const Plan& p = *plan_;
  const char* sync = std::getenv("KILN_SYNC");
  sync_each_node_ = sync && *sync && std::string(sync) != "0";
  const char* no_flat = std::getenv("KILN_NO_FLAT_LAUNCH");
  flat_enabled_ = !(no_flat && *no_flat && std::string(no_flat) != "0");
  // KILN_NO_INPLACE=1: every activation gets memory of its own (to rule the in-place rule out
  // when debugging; tests compare results both ways).
  const char* no_inplace = std::getenv("KILN_NO_INPLACE");
  const bool in_place = !(no_inplace && *no_inplace && std::string(no_inplace) != "0");
  const size_t nt = p.tensors.size();
  // Before anything reads a node's operands (the partitioner's supports() checks included):
  // a Plan handed over in memory gets the checks parse_plan gives a file.
  KILN_TRY(verify_plan(p));
  backends_ = node_backends_for(p, device_);
  if (device_.backend == Backend::kOpenCL) KILN_TRY(verify_backends(p, backends_, device_.caps));
  has_cpu_nodes_ = std::find(backends_.begin(), backends_.end(), Backend::kCpu) != backends_.end();
  dev_.assign(nt, nullptr);
  dev_cap_.assign(nt, 0);
  input_ptr_.assign(nt, nullptr);
  output_ptr_.assign(nt, nullptr);
  device_input_.assign(nt, 0);
  device_output_.assign(nt, 0);
  on_host_.assign(nt, 0);
  on_dev_.assign(nt, 0);
  shape_.resize(nt);
  bytes_.resize(nt);
  for (size_t t = 0; t < nt; ++t) {
    shape_[t] = p.tensors[t].shape;
    bytes_[t] = p.tensors[t].bytes();
  }
  bound_shape_ = shape_;
  bound_bytes_.assign(nt, 0);
  if (p.is_dynamic()) {
    dyn_nodes_ = p.nodes;
    expr_values_.resize(p.dyn_exprs.size());
    for (const DynVar& v : p.dyn_vars) vars_.push_back(v.max);
  }

  // Every kernel must exist before the first run, so a plan from a newer writer fails here.
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const PlanNode& n = p.nodes[i];
    if (backends_[i] == Backend::kCpu && !cpu_registry().find(n.op))
      return unsupported("node '" + n.name + "': this runtime has no CPU kernel for op '" + n.op + "'");
    if (backends_[i] == Backend::kOpenCL && !opencl_registry().find(n.op))
      return unsupported("node '" + n.name + "': this runtime has no OpenCL kernel for op '" +
                         n.op + "'");
  }

  // What this context will allocate, against what the host has available and the device holds,
  // before any of it is allocated: one line naming the memory and the tensor at the peak.
  {
    const bool cl = device_.backend == Backend::kOpenCL;
    PlanMemory need = plan_memory(p, backends_, cl ? opencl_devices()[device_.opencl_index].base_addr_align : 64);
    need.host_weights = 0;  // loaded with the plan already
    KILN_TRY(check_plan_memory(need, host_available_memory(), "available", cl ? &device_.caps : nullptr, "")
                 .with_context("creating a context on " + device_.label));
  }

  if (!p.graphs.empty()) KILN_TRY(SubgraphExecutor::create(p, &subgraphs_));

  // Kernel variants: a plan built for another device may name variants this one cannot run;
  // those nodes run their portable kernels (plans stay portable) and one line says so.
  choices_.assign(p.nodes.size(), KernelChoice{});
  size_t fallbacks = 0;
  std::string first_fallback;
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    if (backends_[i] != Backend::kOpenCL || p.nodes[i].choice.empty()) continue;
    choices_[i] = resolve_choice(p.nodes[i], p, device_.caps);
    if (choices_[i].empty() && fallbacks++ == 0)
      first_fallback = "'" + p.nodes[i].name + "' (" + p.nodes[i].choice.str() + ")";
  }
  if (fallbacks)
    variant_notice_ = std::to_string(fallbacks) + " node(s) run their portable kernel: " + device_.label +
                      " does not offer the kernel variant the plan chose (first: " + first_fallback + ")";

  if (has_cpu_nodes_) {
    // Prepared on a thread of its own that then ends, taking with it the OpenMP team that
    // packing weights and measuring the host start: the thread that runs inferences is then
    // the process's only team owner (runtime/exec/inference_thread.h says why that matters).
    // An all-OpenCL plan has no cpu kernels to prepare and needs no such thread.
    Status st;
    run_on_passing_thread([&] {
      try {
        st = FastCpu::create(plan_, backends_, &fast_cpu_);
      } catch (const std::bad_alloc&) {
        st = out_of_memory("preparing the cpu kernels: a host allocation failed (out of memory)");
      } catch (const std::exception& e) {
        st = internal_error(std::string("preparing the cpu kernels: unexpected exception: ") + e.what());
      }
    });
    KILN_TRY(st);
  }

  constexpr uint64_t kHostAlign = 64;
  const ArenaPlan host = plan_arena(p, backends_, Backend::kCpu, kHostAlign, in_place);
  host_offset_ = host.offset;
  host_arena_bytes_ = host.size;
  if (host.size) {
    host_arena_.reset(fault_now(FaultSite::kHostArena) ? nullptr
                                                       : static_cast<uint8_t*>(std::aligned_alloc(kHostAlign, host.size)));
    count_runtime_allocation();
    if (!host_arena_) return out_of_memory("cannot allocate " + std::to_string(host.size) + " bytes of host activations");
  }
  if (std::find(backends_.begin(), backends_.end(), Backend::kOpenCL) == backends_.end())
    return Status::ok();

  const ClDeviceInfo& dev = opencl_devices()[device_.opencl_index];
  std::shared_ptr<ClDeviceContext> dc;
  KILN_TRY(ClDeviceContext::get(device_.opencl_index, &dc));
  KILN_TRY(ClRuntime::create(dc, &cl_));
  KILN_TRY(DeviceWeights::get(plan_, device_.opencl_index, backends_, &weights_));
  for (size_t i = 0; i < p.nodes.size(); ++i)
    device_checks_ |= backends_[i] == Backend::kOpenCL && sets_device_errors(p, p.nodes[i]);
  if (device_checks_) KILN_TRY(reset_device_errors(*cl_));
  // Device activations: whole buffers shared by tensors with disjoint lifetimes (no
  // sub-buffers, see plan_shared_buffers).
  const SharedBuffersPlan devp = plan_shared_buffers(p, backends_, Backend::kOpenCL, dev.base_addr_align, in_place);
  dev_arena_bytes_ = devp.total;
  dev_buffers_.assign(devp.sizes.size(), nullptr);
  for (size_t b = 0; b < devp.sizes.size(); ++b)
    KILN_TRY(cl_->alloc(devp.sizes[b], &dev_buffers_[b], "device activations"));
  for (size_t t = 0; t < nt; ++t) {
    if (p.tensors[t].kind == TensorKind::kConstant) dev_[t] = weights_->buffer(static_cast<int32_t>(t));
    else if (devp.buffer[t] >= 0) dev_[t] = dev_buffers_[devp.buffer[t]];
    if (dev_[t]) dev_cap_[t] = p.tensors[t].kind == TensorKind::kConstant ? p.tensors[t].bytes() : devp.sizes[devp.buffer[t]];
  }
  planned_dev_ = dev_;
  // Inputs that the chosen variants read packed (transposed constants), shared across contexts.
  packed_input_.assign(p.nodes.size(), -1);
  packed_mem_.assign(p.nodes.size(), nullptr);
  for (size_t n = 0; n < p.nodes.size(); ++n) {
    const int64_t i = choices_[n].param(kPackedInputParam, -1);
    if (i < 0) continue;
    if (i >= static_cast<int64_t>(p.nodes[n].inputs.size()) || p.nodes[n].inputs[i] < 0)
      return invalid_plan("node '" + p.nodes[n].name + "': packed input " + std::to_string(i) + " does not exist");
    KILN_TRY_CTX(weights_->transposed(p.nodes[n].inputs[i], &packed_mem_[n]), "node '" + p.nodes[n].name + "'");
    packed_input_[n] = static_cast<int32_t>(i);
  }
  return cl_->finish();
}

Status ExecutionContext::bind_input(const std::string& name, DType dtype, const Shape& shape,
                                    const void* data, size_t bytes) {
  const Plan& p = *plan_;
  for (int32_t t : p.inputs) {
    const PlanTensor& pt = p.tensors[t];
    if (pt.name != name) continue;
    if (p.is_dynamic() && dtype == pt.dtype && shape != shape_[t]) KILN_TRY(set_input_shape(name, shape));
    if (dtype != pt.dtype || shape != shape_[t])
      return invalid_argument("input '" + name + "': expected " + dtype_name(pt.dtype) + " " +
                              shape_str(shape_[t]) + ", got " + dtype_name(dtype) + " " +
                              shape_str(shape));
    if (bytes != bytes_[t])
      return invalid_argument("input '" + name + "': expected " + std::to_string(bytes_[t]) +
                              " bytes, got " + std::to_string(bytes));
    if (!data && bytes) return invalid_argument("input '" + name + "': data is NULL");
    if (device_input_[t]) {
      clReleaseMemObject(dev_[t]);
      dev_[t] = planned_dev_[t];
      device_input_[t] = 0;
      flat_ready_ = false;  // the recorded launches read the device binding
    }
    input_ptr_[t] = data;
    bound_shape_[t] = shape;
    return Status::ok();
  }
  return not_found("the plan has no input named '" + name + "'");
}

Status ExecutionContext::bind_output(const std::string& name, void* data, size_t bytes) {
  const Plan& p = *plan_;
  for (int32_t t : p.outputs) {
    const PlanTensor& pt = p.tensors[t];
    if (pt.name != name) continue;
    if (bytes != bytes_[t])
      return invalid_argument("output '" + name + "': expected " + std::to_string(bytes_[t]) + " bytes, got " +
                              std::to_string(bytes) + " (it is " + dtype_name(pt.dtype) + " " + shape_str(shape_[t]) +
                              ")");
    if (!data && bytes) return invalid_argument("output '" + name + "': data is NULL");
    output_ptr_[t] = data;
    bound_bytes_[t] = bytes;
    device_output_[t] = 0;
    return Status::ok();
  }
  return not_found("the plan has no output named '" + name + "'");
}

int32_t ExecutionContext::io_tensor(const std::string& name, bool output) const {
  for (int32_t t : output ? plan_->outputs : plan_->inputs)
    if (plan_->tensors[t].name == name) return t;
  return -1;
}

Status ExecutionContext::host_buffer(const std::string& name, void** data, size_t* bytes) {
  int32_t t = io_tensor(name, false);
  if (t < 0) t = io_tensor(name, true);
  if (t < 0) return not_found("the plan has no input or output named '" + name + "'");
  auto it = host_buffers_.find(t);
  if (it == host_buffers_.end()) {
    HostBuffer h;
    h.bytes = plan_->tensors[t].bytes();  // the max shape: valid at every shape of a dynamic plan
    if (cl_) {
      KILN_TRY(cl_->pinned_host(h.bytes, &h.mem, &h.data, "'" + name + "'"));
    } else {
      h.data = std::aligned_alloc(64, (h.bytes + 63) / 64 * 64 + 64);
      if (!h.data) return out_of_memory("cannot allocate " + std::to_string(h.bytes) + " bytes of host memory for '" + name + "'");
    }
    it = host_buffers_.emplace(t, h).first;
  }
  *data = it->second.data;
  *bytes = it->second.bytes;
  return Status::ok();
}

Status ExecutionContext::bind_input_device(const std::string& name, cl_mem mem) {
  const int32_t t = io_tensor(name, false);
  if (t < 0) return not_found("the plan has no input named '" + name + "'");
  if (!cl_) return unsupported("input '" + name + "': device bindings need an OpenCL context, this one runs on " + device_.label);
  const Plan& p = *plan_;
  for (size_t n = 0; n < p.nodes.size(); ++n)
    for (int32_t i : p.nodes[n].inputs)
      if (i == t && backends_[n] != Backend::kOpenCL)
        return unsupported("input '" + name + "' is read by node '" + p.nodes[n].name +
                           "' on the cpu backend; bind it from host memory");
  cl_context owner = nullptr;
  size_t size = 0;
  if (!mem || clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof owner, &owner, nullptr) != CL_SUCCESS ||
      clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, nullptr) != CL_SUCCESS)
    return invalid_argument("input '" + name + "': not a valid OpenCL buffer");
  if (owner != cl_->context())
    return invalid_argument("input '" + name + "': the buffer belongs to another OpenCL context than kiln's on " +
                            device_.label + " (use a buffer from a kiln context on this device)");
  if (size < p.tensors[t].bytes())
    return invalid_argument("input '" + name + "': the buffer has " + std::to_string(size) + " bytes, the input needs " +
                            std::to_string(p.tensors[t].bytes()));
  KILN_CL(clRetainMemObject(mem), "retaining the buffer bound to input '" + name + "'");
  if (device_input_[t]) clReleaseMemObject(dev_[t]);
  dev_[t] = mem;
  device_input_[t] = 1;
  input_ptr_[t] = nullptr;
  bound_shape_[t] = shape_[t];
  flat_ready_ = false;  // the recorded launches read the planned buffer
  return Status::ok();
}

Status ExecutionContext::output_device(const std::string& name, cl_mem* mem) {
  const int32_t t = io_tensor(name, true);
  if (t < 0) return not_found("the plan has no output named '" + name + "'");
  const Plan& p = *plan_;
  bool on_device = false;
  for (size_t n = 0; n < p.nodes.size(); ++n)
    for (int32_t o : p.nodes[n].outputs)
      if (o == t) on_device = backends_[n] == Backend::kOpenCL;
  if (!cl_ || !on_device || !dev_[t])
    return unsupported("output '" + name + "' is not produced on an OpenCL device in this context (" + device_.label +
                       "); bind it to host memory");
  device_output_[t] = 1;
  output_ptr_[t] = nullptr;
  *mem = dev_[t];
  return Status::ok();
}

Status ExecutionContext::set_input_shape(const std::string& name, const Shape& shape) {
  const Plan& p = *plan_;
  int32_t t = -1;
  for (int32_t i : p.inputs)
    if (p.tensors[i].name == name) t = i;
  if (t < 0) return not_found("the plan has no input named '" + name + "'");
  const PlanTensor& pt = p.tensors[t];
  if (!p.is_dynamic()) {
    if (shape != pt.shape)
      return invalid_argument("input '" + name + "' has the fixed shape " + shape_str(pt.shape) + ", got " +
                              shape_str(shape) + " (the plan was built without --min-shapes/--max-shapes)");
    return Status::ok();
  }
  if (shape.size() != pt.shape.size())
    return invalid_argument("input '" + name + "': expected rank " + std::to_string(pt.shape.size()) + ", got " +
                            shape_str(shape));
  std::vector<int64_t> vars = vars_;
  std::vector<uint8_t> set(vars.size(), 0);
  for (size_t d = 0; d < shape.size(); ++d) {
    const DynInputDim* dyn = nullptr;
    for (const DynInputDim& di : p.dyn_inputs)
      if (di.tensor == t && di.dim == d) dyn = &di;
    if (!dyn) {
      if (shape[d] != pt.shape[d])
        return invalid_argument("input '" + name + "' dim " + std::to_string(d) + " is fixed to " +
                                std::to_string(pt.shape[d]) + " in the plan, got " + shape_str(shape));
      continue;
    }
    const DynVar& v = p.dyn_vars[dyn->var];
    if (shape[d] < v.min || shape[d] > v.max)
      return invalid_argument("input '" + name + "' dim " + std::to_string(d) + " ('" + v.name + "') = " +
                              std::to_string(shape[d]) + " is outside the plan's range [" + std::to_string(v.min) +
                              ", " + std::to_string(v.max) + "] (rebuild with wider --min-shapes/--max-shapes)");
    if (set[dyn->var] && vars[dyn->var] != shape[d])
      return invalid_argument("input '" + name + "' shape " + shape_str(shape) + ": dims sharing '" + v.name +
                              "' differ");
    vars[dyn->var] = shape[d];
    set[dyn->var] = 1;
  }
  if (vars == vars_) return Status::ok();
  wait_idle();
  return apply_vars(vars).with_context("reshaping input '" + name + "' to " + shape_str(shape));
}

Status ExecutionContext::apply_vars(const std::vector<int64_t>& vars) {
  const Plan& p = *plan_;
  for (size_t i = 0; i < p.dyn_exprs.size(); ++i) {
    const DynExpr& e = p.dyn_exprs[i];
    int64_t v;
    if (!eval_dyn_expr(p.dyn_vars, e, vars.data(), &v))
      return invalid_plan("a shape expression overflows at these input shapes");
    // Buffers are sized for the max point: a dim beyond it (a corrupted or non-monotone
    // expression) would overrun them.
    if (e.target == DynTarget::kTensorDim && (v < 0 || v > p.tensors[e.index].shape[e.pos]))
      return invalid_plan("tensor '" + p.tensors[e.index].name + "' dim " + std::to_string(e.pos) + " would be " +
                          std::to_string(v) + ", outside [0, " + std::to_string(p.tensors[e.index].shape[e.pos]) +
                          "] that its memory was planned for");
    expr_values_[i] = v;
  }
  for (size_t i = 0; i < p.dyn_exprs.size(); ++i) {
    const DynExpr& e = p.dyn_exprs[i];
    if (e.target == DynTarget::kTensorDim) {
      shape_[e.index][e.pos] = expr_values_[i];
      continue;
    }
    AttrValue* a = dyn_nodes_[e.index].attrs.find_mutable(e.attr);
    if (e.target == DynTarget::kAttrInt) std::get<int64_t>(*a) = expr_values_[i];
    else std::get<std::vector<int64_t>>(*a)[e.pos] = expr_values_[i];
  }
  for (size_t t = 0; t < p.tensors.size(); ++t)
    bytes_[t] = static_cast<uint64_t>(shape_numel(shape_[t])) * dtype_size(p.tensors[t].dtype);
  // Every node again at these shapes: the expressions are checked at the max point only.
  Status st = verify_nodes_at(p, dyn_nodes_, shape_);
  if (!st && vars != vars_) {
    (void)apply_vars(vars_);  // back to the shapes that were verified
    return st;
  }
  vars_ = vars;
  // The recorded launches carry the old shapes.
  flat_ready_ = false;
  return st;
}

TensorView ExecutionContext::host_view(int32_t t) {
  const PlanTensor& pt = plan_->tensors[t];
  switch (pt.kind) {
    case TensorKind::kInput:
      return TensorView{pt.dtype, shape_[t], const_cast<void*>(input_ptr_[t])};
    case TensorKind::kConstant:
      return TensorView{pt.dtype, pt.shape, const_cast<uint8_t*>(plan_->weight_data(pt))};
    case TensorKind::kActivation:
      break;
  }
  uint8_t* at = host_arena_.get() + host_offset_[t];
  arena_unpoison(at, bytes_[t]);  // ASan builds: the arena is poisoned around the running node's tensors
  return TensorView{pt.dtype, shape_[t], at};
}

Status ExecutionContext::marker(cl_event* ev) {
  *ev = nullptr;
  if (!profiler_) return Status::ok();
  KILN_CL(clEnqueueMarkerWithWaitList(cl_->queue(), 0, nullptr, ev), "enqueueing a profiling marker");
  return Status::ok();
}

Status ExecutionContext::ensure_on(int32_t t, Backend b) {
  if (b == Backend::kCpu ? on_host_[t] : on_dev_[t]) return Status::ok();
  KILN_TRY(transfer(t, b, host_view(t).data));
  (b == Backend::kCpu ? on_host_ : on_dev_)[t] = 1;
  return Status::ok();
}

Status ExecutionContext::download_to(int32_t t, void* dst) { return transfer(t, Backend::kCpu, dst); }

// Moves tensor t between its device buffer and host memory `host` (towards backend b), timed
// when profiling.
Status ExecutionContext::transfer(int32_t t, Backend b, void* host) {
  const PlanTensor& pt = plan_->tensors[t];
  if (!dev_[t]) return internal_error("tensor '" + pt.name + "' has no device buffer");
  const int64_t t0 = Profiler::now_ns();
  cl_event before, after;
  KILN_TRY(marker(&before));
  // The tensor name alone as context: no string is built on the success path.
  Status st = b == Backend::kCpu ? cl_->download(dev_[t], host, bytes_[t], pt.name)
                                 : cl_->upload(dev_[t], host, bytes_[t], pt.name);
  if (st.is_ok()) st = marker(&after);
  if (profiler_ && st.is_ok())
    profiler_->add_device(b == Backend::kCpu ? ProfileEvent::Kind::kDownload : ProfileEvent::Kind::kUpload, -1, t,
                          before, after, t0);
  else if (before)
    clReleaseEvent(before);
  return st;
}

ClKernelArgs ExecutionContext::kernel_args(size_t n) {
  const Plan& p = *plan_;
  const PlanNode& node = node_at(n);
  ClKernelArgs args{*cl_, p, node, {}, {}, &choices_[n]};
  args.node_index = static_cast<int32_t>(n);
  for (int32_t t : node.inputs)
    args.inputs.push_back(t >= 0 ? ClTensor{dev_[t], p.tensors[t].dtype, shape_[t]} : ClTensor{});
  for (int32_t t : node.outputs) args.outputs.push_back(ClTensor{dev_[t], p.tensors[t].dtype, shape_[t]});
  if (packed_input_[n] >= 0) args.inputs[packed_input_[n]].mem = packed_mem_[n];
  return args;
}

// Runs before anything of an inference is enqueued: a launcher that turns out not to be
// replayable may already have enqueued work, which then only writes activations that this
// inference overwrites.
Status ExecutionContext::record_launches() {
  const Plan& p = *plan_;
  cl_->release_recordings();
  flat_.assign(p.nodes.size(), NodeLaunches{});
  for (size_t n = 0; n < p.nodes.size(); ++n) {
    if (backends_[n] != Backend::kOpenCL) continue;
    ClKernelArgs args = kernel_args(n);
    cl_->begin_recording();
    Status st = opencl_registry().find(args.node.op)->run(args);
    const bool replayable = cl_->end_recording(&flat_[n].launches);
    if (!st) return st.with_context("node '" + args.node.name + "' (" + args.node.op + ", opencl)");
    flat_[n].replay = replayable;
  }
  flat_ready_ = true;
  return Status::ok();
}

Status ExecutionContext::run_node(size_t n) {
  const PlanNode& node = node_at(n);
  const Backend b = backends_[n];
  for (int32_t t : node.inputs)
    if (t >= 0) KILN_TRY(ensure_on(t, b));
  if (b == Backend::kCpu) {
    arena_poison(host_arena_.get(), host_arena_bytes_);  // host_view unpoisons this node's tensors
    std::vector<TensorView> in, out;
    for (int32_t t : node.inputs) in.push_back(t >= 0 ? host_view(t) : TensorView{});
    for (int32_t t : node.outputs) out.push_back(host_view(t));
    const int64_t t0 = profiler_ ? Profiler::now_ns() : 0;
    bool fell_back = false;  // a node with a oneDNN kernel that ran on the reference one
    if (fast_cpu_ && fast_cpu_->handles(n)) KILN_TRY(fast_cpu_->run(n, node, in, out, &fell_back));
    else KILN_TRY(run_cpu_kernel(node, in, out, subgraphs_.get()));
    if (profiler_)
      profiler_->add_host(ProfileEvent::Kind::kNode, static_cast<int32_t>(n), -1, t0, Profiler::now_ns(), fell_back);
  } else {
    // The last line of defence for device memory: whatever a launcher computes from the shapes,
    // the shapes fit the buffers (the verifier ties the launcher's index math to the shapes).
    for (const std::vector<int32_t>* list : {&node.inputs, &node.outputs})
      for (int32_t t : *list)
        if (t >= 0 && (!dev_[t] || bytes_[t] > dev_cap_[t]))
          return internal_error("node '" + node.name + "': tensor '" + plan_->tensors[t].name + "' (" +
                                std::to_string(bytes_[t]) + " bytes) does not fit its device buffer (" +
                                std::to_string(dev_cap_[t]) + " bytes)");
    const int64_t t0 = Profiler::now_ns();
    // Profiled, a replayed node is timed by its own kernels' events (first start to last end);
    // others (CLBlast's launches, copies) by markers around them, which also count the time
    // the device waited for the host to enqueue them.
    const bool replay = flat_ready_ && flat_[n].replay;
    const bool kernel_events = profiler_ && replay && !flat_[n].launches.empty();
    cl_event before = nullptr, after = nullptr;
    if (!kernel_events) KILN_TRY(marker(&before));
    Status st;
    const int64_t h0 = Profiler::now_ns();
    if (replay) {
      st = kernel_events ? cl_->replay(flat_[n].launches, &before, &after) : cl_->replay(flat_[n].launches);
    } else {
      ClKernelArgs args = kernel_args(n);
      st = opencl_registry().find(node.op)->run(args);
    }
    const int64_t host_ns = Profiler::now_ns() - h0;
    issue_ns_ += host_ns;
    // KILN_SYNC=1 waits for every OpenCL node, so an asynchronous device fault is reported
    // against the node that caused it rather than at the end of the inference.
    if (st.is_ok() && sync_each_node_) st = cl_->finish();
    if (!st) st = st.with_context("node '" + node.name + "' (" + node.op + ", opencl)");
    if (st.is_ok() && !kernel_events) st = marker(&after);
    if (profiler_ && st.is_ok()) {
      profiler_->add_device(ProfileEvent::Kind::kNode, static_cast<int32_t>(n), -1, before, after, t0, host_ns,
                            kernel_events);
    } else {
      for (cl_event e : {before, after})
        if (e) clReleaseEvent(e);
    }
    KILN_TRY(st);
  }
  for (int32_t t : node.outputs) {
    on_host_[t] = b == Backend::kCpu;
    on_dev_[t] = b == Backend::kOpenCL;
  }
  return observer_ ? observe_outputs(n) : Status::ok();
}

Status ExecutionContext::observe_outputs(size_t n) {
  const PlanNode& node = plan_->nodes[n];
  for (int32_t t : node.outputs) {
    const PlanTensor& pt = plan_->tensors[t];
    if (backends_[n] == Backend::kCpu) {
      KILN_TRY(observer_(t, host_view(t)));
      continue;
    }
    // A device-only tensor has no host arena slot: download into scratch memory instead.
    HostTensor copy(pt.dtype, pt.shape);
    KILN_TRY(cl_->download(dev_[t], copy.data(), copy.size_bytes(), pt.name));
    KILN_TRY(observer_(t, copy.view()));
  }
  return Status::ok();
}

Status ExecutionContext::run_caught() {
  try {
    return run();
  } catch (const std::bad_alloc&) {
    return out_of_memory("an inference on " + device_.label + ": a host allocation failed (out of memory)");
  } catch (const std::exception& e) {
    return internal_error(std::string("unexpected exception: ") + e.what());
  }
}

ExecutionContext::IssueTime ExecutionContext::opencl_issue_time() const {
  return IssueTime{issue_ns_, cl_ ? cl_->launches() : 0};
}

Status ExecutionContext::run() {
  const Plan& p = *plan_;
  if (cl_) KILN_TRY(cl_->set_profiling(profiler_ != nullptr));
  // This inference's share of the cores, read by every CPU kernel it runs (plans with CPU
  // nodes only: an all-OpenCL inference takes none).
  std::optional<CpuThreadShare> threads;
  if (has_cpu_nodes_) threads.emplace(cpu_threads_);
  for (int32_t t : p.inputs) {
    if (device_input_[t]) continue;
    if (!input_ptr_[t] && bytes_[t]) return invalid_argument("input '" + p.tensors[t].name + "' was not bound");
    // Another input sharing a dynamic dim may have changed this one's shape since it was bound.
    if (input_ptr_[t] && bound_shape_[t] != shape_[t])
      return invalid_argument("input '" + p.tensors[t].name + "' was bound with shape " + shape_str(bound_shape_[t]) +
                              " but the inputs bound since make it " + shape_str(shape_[t]) +
                              " (inputs disagree on a shared dynamic dim); rebind it");
  }
  for (int32_t t : p.outputs) {
    if (device_output_[t]) continue;
    if (!output_ptr_[t] && bytes_[t]) return invalid_argument("output '" + p.tensors[t].name + "' was not bound");
    if (output_ptr_[t] && bound_bytes_[t] != bytes_[t])
      return invalid_argument("output '" + p.tensors[t].name + "' was bound with " + std::to_string(bound_bytes_[t]) +
                              " bytes but is " + std::to_string(bytes_[t]) + " bytes (" + shape_str(shape_[t]) +
                              ") at the current input shapes; rebind it");
  }
  for (size_t t = 0; t < p.tensors.size(); ++t) {
    const TensorKind k = p.tensors[t].kind;
    on_host_[t] = k != TensorKind::kActivation;
    on_dev_[t] = k == TensorKind::kConstant && dev_[t] != nullptr;
    if (device_input_[t]) {
      on_host_[t] = 0;
      on_dev_[t] = 1;
    }
  }
  Status st;
  // A tensor observer reads activations as stored: keep them all plain then.
  FastCpu::Run fast_run(fast_cpu_.get(), observer_ != nullptr);
  if (cl_ && flat_enabled_ && !flat_ready_) st = record_launches();
  for (size_t n = 0; n < p.nodes.size() && st.is_ok(); ++n) st = run_node(n);
  for (size_t i = 0; i < p.outputs.size() && st.is_ok(); ++i) {
    const int32_t t = p.outputs[i];
    if (device_output_[t] || !bytes_[t]) continue;
    if (!on_host_[t] && on_dev_[t]) {
      // Straight into the caller's memory (no copy through the host arena).
      st = download_to(t, output_ptr_[t]);
      continue;
    }
    st = ensure_on(t, Backend::kCpu);
    if (st.is_ok()) std::memcpy(output_ptr_[t], host_view(t).data, bytes_[t]);
  }
  // Leave the queue drained even after a failure so the context stays usable.
  if (cl_) {
    Status f = cl_->finish();
    if (st.is_ok()) st = f;
    // A value a device kernel refused (runtime/backends/opencl/device_errors.h); read (and
    // cleared) after a failed run too, so it is never reported against the next one.
    if (device_checks_ && !cl_->lost()) {
      Status e = check_device_errors(*cl_, p, &dyn_nodes_);
      if (st.is_ok()) st = e;
    }
  }
  if (profiler_) {
    Status f = profiler_->end_run();
    if (st.is_ok()) st = f;
  }
  return st;
}

std::shared_ptr<InferenceEvent> ExecutionContext::enqueue() {
  auto ev = std::make_shared<InferenceEvent>();
  std::lock_guard<std::mutex> lock(queue_mu_);
  pending_.push_back(ev);
  if (!draining_) {
    draining_ = true;
    worker_.submit([this] { drain(); });
  }
  return ev;
}

void ExecutionContext::drain() {
  for (;;) {
    std::shared_ptr<InferenceEvent> ev;
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (pending_.empty()) {
        draining_ = false;
        idle_cv_.notify_all();
        return;
      }
      ev = pending_.front();
      pending_.pop_front();
    }
    const Status st = run_caught();
    ev->complete(static_cast<int>(st.code()), st.message());
  }
}

void ExecutionContext::wait_idle() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  idle_cv_.wait(lock, [this] { return !draining_ && pending_.empty(); });
}

}  // namespace kiln
