#include <cstring>

#include "runtime/plan/byte_io.h"
#include "runtime/plan/plan_format.h"
#include "runtime/plan/plan_verifier.h"

namespace kiln {
namespace {

constexpr size_t kMaxRank = 16;
// No real tensor comes near this (256 TiB); anything above is corruption.
constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 48;

// Byte size of a dense tensor, or false when it overflows or exceeds kMaxTensorBytes. Checked
// before anything is allocated, so corrupted dims cannot request absurd amounts of memory. The
// product of the non-zero dims is bounded too: an empty tensor [0, 2^62, 2^62] would otherwise
// pass, and kernels multiply partial dims (rows, strides) in int64.
bool checked_bytes(DType dt, const Shape& shape, uint64_t* out) {
  uint64_t bytes = dtype_size(dt), nonzero = dtype_size(dt);
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && nonzero > kMaxTensorBytes / static_cast<uint64_t>(d))) return false;
    if (d > 0) nonzero *= static_cast<uint64_t>(d);
    bytes *= static_cast<uint64_t>(d);
  }
  *out = bytes;
  return true;
}

// Decoding helpers: each returns false on truncation or an impossible value; the caller names
// the section being read.
bool read_shape(ByteReader& r, Shape* s) {
  uint64_t rank;
  if (!r.count(&rank, 8) || rank > kMaxRank) return false;
  s->resize(rank);
  for (auto& d : *s)
    if (!r.i64(&d) || d < 0) return false;
  return true;
}

bool read_strings(ByteReader& r, std::vector<std::string>* v) {
  uint64_t n;
  if (!r.count(&n, 8)) return false;
  v->resize(n);
  for (auto& s : *v)
    if (!r.str(&s)) return false;
  return true;
}

bool read_ints(ByteReader& r, std::vector<int32_t>* v) {
  uint64_t n;
  if (!r.count(&n, 4)) return false;
  v->resize(n);
  for (auto& x : *v)
    if (!r.i32(&x)) return false;
  return true;
}

bool read_attrs(ByteReader& r, Attributes* attrs) {
  uint64_t n;
  if (!r.count(&n, 9)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string name;
    uint8_t kind;
    if (!r.str(&name) || !r.u8(&kind)) return false;
    switch (static_cast<AttrKind>(kind)) {
      case AttrKind::kInt: {
        int64_t v;
        if (!r.i64(&v)) return false;
        attrs->set(name, v);
        break;
      }
      case AttrKind::kFloat: {
        float v;
        if (!r.f32(&v)) return false;
        attrs->set(name, v);
        break;
      }
      case AttrKind::kString: {
        std::string v;
        if (!r.str(&v)) return false;
        attrs->set(name, v);
        break;
      }
      case AttrKind::kInts: {
        uint64_t c;
        if (!r.count(&c, 8)) return false;
        std::vector<int64_t> v(c);
        for (auto& x : v)
          if (!r.i64(&x)) return false;
        attrs->set(name, v);
        break;
      }
      case AttrKind::kFloats: {
        uint64_t c;
        if (!r.count(&c, 4)) return false;
        std::vector<float> v(c);
        for (auto& x : v)
          if (!r.f32(&x)) return false;
        attrs->set(name, v);
        break;
      }
      case AttrKind::kTensor: {
        int32_t dt;
        Shape shape;
        uint64_t nbytes;
        uint64_t expect;
        if (!r.i32(&dt) || !dtype_is_storable(static_cast<DType>(dt)) || !read_shape(r, &shape) ||
            !r.count(&nbytes, 1) || !checked_bytes(static_cast<DType>(dt), shape, &expect) ||
            expect != nbytes)
          return false;
        auto t = std::make_shared<HostTensor>(static_cast<DType>(dt), shape);
        if (!r.raw(t->data(), nbytes)) return false;
        attrs->set(name, std::shared_ptr<const HostTensor>(t));
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

bool read_backend(ByteReader& r, Backend* b) {
  uint8_t v;
  if (!r.u8(&v) || v > static_cast<uint8_t>(Backend::kOpenCL)) return false;
  *b = static_cast<Backend>(v);
  return true;
}

bool read_meta(ByteReader& r, Plan* p) {
  DeviceCaps& t = p->target;
  if (!r.str(&p->writer_version) || !r.str(&p->model_name) || !r.str(&t.kind) || !r.str(&t.name) ||
      !r.str(&t.vendor) || !r.str(&t.driver_version) || !r.str(&t.opencl_c_version) ||
      !read_strings(r, &t.extensions) || !r.u64(&t.global_mem_bytes) ||
      !r.u64(&t.max_alloc_bytes) || !r.u64(&t.local_mem_bytes) || !r.u32(&t.compute_units) ||
      !r.u64(&t.device_type) || !read_strings(r, &p->required_caps))
    return false;
  uint64_t n;
  if (!r.count(&n, 16)) return false;
  p->tensors.resize(n);
  for (PlanTensor& pt : p->tensors) {
    int32_t dt;
    uint8_t kind;
    if (!r.str(&pt.name) || !r.i32(&dt) || !read_shape(r, &pt.shape) || !r.u8(&kind) ||
        !r.u64(&pt.weight_offset) || !r.u64(&pt.weight_bytes))
      return false;
    if (!dtype_is_storable(static_cast<DType>(dt)) || kind > static_cast<uint8_t>(TensorKind::kActivation))
      return false;
    pt.dtype = static_cast<DType>(dt);
    pt.kind = static_cast<TensorKind>(kind);
  }
  if (!r.count(&n, 16)) return false;
  p->nodes.resize(n);
  for (PlanNode& node : p->nodes) {
    if (!r.str(&node.name) || !r.str(&node.op) || !read_attrs(r, &node.attrs) ||
        !read_ints(r, &node.inputs) || !read_ints(r, &node.outputs) ||
        !read_backend(r, &node.backend) || !r.str(&node.kernel) || !read_strings(r, &node.fused))
      return false;
  }
  if (!read_ints(r, &p->inputs) || !read_ints(r, &p->outputs)) return false;
  if (!r.count(&n, 9)) return false;
  p->segments.resize(n);
  for (Segment& s : p->segments)
    if (!read_backend(r, &s.backend) || !r.i32(&s.first_node) || !r.i32(&s.end_node) ||
        !read_ints(r, &s.copy_in))
      return false;
  if (!r.count(&n, 32) || n > kMaxDynVars) return false;
  p->dyn_vars.resize(n);
  for (DynVar& v : p->dyn_vars)
    if (!r.str(&v.name) || !r.i64(&v.min) || !r.i64(&v.max) || !r.i64(&v.opt)) return false;
  if (!r.count(&n, 12)) return false;
  p->dyn_inputs.resize(n);
  for (DynInputDim& d : p->dyn_inputs)
    if (!r.i32(&d.tensor) || !r.u32(&d.dim) || !r.u32(&d.var)) return false;
  if (!r.count(&n, 25)) return false;
  p->dyn_exprs.resize(n);
  for (DynExpr& e : p->dyn_exprs) {
    uint8_t target;
    uint64_t terms;
    if (!r.u8(&target) || target > static_cast<uint8_t>(DynTarget::kAttrInts) || !r.i32(&e.index) ||
        !r.str(&e.attr) || !r.u32(&e.pos) || !r.count(&terms, 12) || terms > (1u << kMaxDynVars))
      return false;
    e.target = static_cast<DynTarget>(target);
    e.terms.resize(terms);
    for (DynTerm& t : e.terms)
      if (!r.u32(&t.vars) || !r.i64(&t.coef)) return false;
  }
  return r.remaining() == 0;
}

bool read_kernels(ByteReader& r, Plan* p) {
  uint64_t n;
  if (!r.count(&n, 16)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string name, src;
    if (!r.str(&name) || !r.str(&src)) return false;
    p->kernel_sources[name] = std::move(src);
  }
  return r.remaining() == 0;
}

// The dynamic-shape tables: every index in range, every target an existing dim or integer
// attribute, every input dim bound to one variable, and the stored (max-point) values equal to
// the expressions at the max point, so a corrupted expression is caught here rather than when a
// context evaluates it.
Status verify_dynamic(const Plan& p) {
  const size_t nv = p.dyn_vars.size();
  if (nv > kMaxDynVars) return invalid_plan("too many dynamic dims");
  if (nv == 0 && (!p.dyn_inputs.empty() || !p.dyn_exprs.empty()))
    return invalid_plan("shape expressions without dynamic dims");
  std::vector<int64_t> max_vars;
  for (const DynVar& v : p.dyn_vars) {
    if (v.min < 0 || v.max < v.min || v.opt < v.min || v.opt > v.max)
      return invalid_plan("dynamic dim '" + v.name + "' has a bad range");
    max_vars.push_back(v.max);
  }
  std::vector<uint8_t> var_bound(nv, 0);
  for (const DynInputDim& d : p.dyn_inputs) {
    bool is_input = false;
    for (int32_t t : p.inputs) is_input |= t == d.tensor;
    if (!is_input || d.dim >= p.tensors[d.tensor].shape.size() || d.var >= nv ||
        p.tensors[d.tensor].shape[d.dim] != p.dyn_vars[d.var].max)
      return invalid_plan("dynamic input dim entry is out of range");
    var_bound[d.var] = 1;
  }
  for (size_t v = 0; v < nv; ++v)
    if (!var_bound[v]) return invalid_plan("dynamic dim '" + p.dyn_vars[v].name + "' belongs to no input");
  for (const DynExpr& e : p.dyn_exprs) {
    for (const DynTerm& t : e.terms)
      if (t.vars >> nv) return invalid_plan("shape expression uses an unknown dynamic dim");
    int64_t stored = 0;
    if (e.target == DynTarget::kTensorDim) {
      if (e.index < 0 || static_cast<size_t>(e.index) >= p.tensors.size() ||
          e.pos >= p.tensors[e.index].shape.size() || p.tensors[e.index].kind == TensorKind::kConstant)
        return invalid_plan("shape expression names a tensor dim out of range");
      stored = p.tensors[e.index].shape[e.pos];
    } else {
      if (e.index < 0 || static_cast<size_t>(e.index) >= p.nodes.size())
        return invalid_plan("shape expression names a node out of range");
      auto it = p.nodes[e.index].attrs.all().find(e.attr);
      if (it == p.nodes[e.index].attrs.all().end())
        return invalid_plan("shape expression names a missing attribute '" + e.attr + "'");
      if (e.target == DynTarget::kAttrInt && attr_kind(it->second) == AttrKind::kInt) {
        stored = std::get<int64_t>(it->second);
      } else if (e.target == DynTarget::kAttrInts && attr_kind(it->second) == AttrKind::kInts &&
                 e.pos < std::get<std::vector<int64_t>>(it->second).size()) {
        stored = std::get<std::vector<int64_t>>(it->second)[e.pos];
      } else {
        return invalid_plan("shape expression names attribute '" + e.attr + "' of the wrong kind");
      }
    }
    int64_t at_max;
    if (!eval_dyn_expr(p.dyn_vars, e, max_vars.data(), &at_max) || at_max != stored)
      return invalid_plan("a shape expression disagrees with the plan's shapes at the max point");
  }
  return Status::ok();
}

}  // namespace

Status decode_plan(const uint8_t* data, size_t size, Plan* out) {
  if (size < kPlanHeaderBytes)
    return invalid_plan("file is " + std::to_string(size) + " bytes, smaller than the " +
                        std::to_string(kPlanHeaderBytes) + "-byte plan header (truncated?)");
  if (std::memcmp(data, kPlanMagic, 8) != 0) return invalid_plan("not a kiln plan (bad magic)");
  ByteReader h(data + 8, kPlanHeaderBytes - 8);
  uint32_t version, header_bytes, crc, count;
  uint64_t file_size, table_offset;
  h.u32(&version);
  h.u32(&header_bytes);
  h.u64(&file_size);
  h.u32(&crc);
  h.u32(&count);
  h.u64(&table_offset);
  if (version != kPlanFormatVersion)
    return invalid_plan("plan format version " + std::to_string(version) +
                        " is not supported (this runtime reads version " +
                        std::to_string(kPlanFormatVersion) + "; rebuild the plan)");
  if (header_bytes != kPlanHeaderBytes) return invalid_plan("bad header size");
  // The header padding is outside the checksum; requiring zeros keeps it usable by later
  // format versions and catches damage there too.
  for (size_t i = 40; i < kPlanHeaderBytes; ++i)
    if (data[i] != 0) return invalid_plan("reserved header bytes are not zero (corrupted header?)");
  if (file_size != size)
    return invalid_plan("plan header says " + std::to_string(file_size) + " bytes but " +
                        std::to_string(size) + " are present (truncated or padded file)");
  if (crc32(data + kPlanHeaderBytes, size - kPlanHeaderBytes) != crc)
    return invalid_plan("checksum mismatch: the plan file is corrupted");
  if (count > 64 || table_offset > size || (size - table_offset) / 24 < count)
    return invalid_plan("section table out of bounds");

  Plan p;
  p.format_version = version;
  bool have_meta = false;
  for (uint32_t i = 0; i < count; ++i) {
    ByteReader e(data + table_offset + i * 24, 24);
    uint32_t kind, reserved;
    uint64_t off, len;
    e.u32(&kind);
    e.u32(&reserved);
    e.u64(&off);
    e.u64(&len);
    if (off > size || len > size - off)
      return invalid_plan("section " + std::to_string(i) + " lies outside the file");
    ByteReader r(data + off, static_cast<size_t>(len));
    switch (static_cast<PlanSection>(kind)) {
      case PlanSection::kMeta:
        if (!read_meta(r, &p)) return invalid_plan("graph section is malformed");
        have_meta = true;
        break;
      case PlanSection::kWeights:
        if (off % kWeightAlignment) return invalid_plan("weights section is not 64-byte aligned");
        p.weights.assign(data + off, data + off + len);
        break;
      case PlanSection::kKernels:
        if (!read_kernels(r, &p)) return invalid_plan("kernel section is malformed");
        break;
      default:
        return invalid_plan("unknown section kind " + std::to_string(kind));
    }
  }
  if (!have_meta) return invalid_plan("plan has no graph section");
  KILN_TRY(verify_plan_structure(p));
  *out = std::move(p);
  return Status::ok();
}

Status parse_plan(const uint8_t* data, size_t size, Plan* out) {
  Plan p;
  KILN_TRY(decode_plan(data, size, &p));
  KILN_TRY(verify_plan_nodes(p));
  *out = std::move(p);
  return Status::ok();
}

Status verify_plan(const Plan& p) {
  KILN_TRY(verify_plan_structure(p));
  return verify_plan_nodes(p);
}

Status verify_plan_structure(const Plan& p) {
  const int32_t nt = static_cast<int32_t>(p.tensors.size());
  std::vector<uint8_t> ready(p.tensors.size(), 0);
  for (int32_t i = 0; i < nt; ++i) {
    const PlanTensor& t = p.tensors[i];
    // Sizes are computed as int64 products everywhere (PlanTensor::bytes, shape_numel): bound
    // them here so a corrupted dim cannot overflow them or request an absurd allocation.
    if (!dtype_is_storable(t.dtype) || t.shape.size() > kMaxRank)
      return invalid_plan("tensor '" + t.name + "' has a bad dtype or rank");
    uint64_t bytes;
    if (!checked_bytes(t.dtype, t.shape, &bytes))
      return invalid_plan("tensor '" + t.name + "' has an impossible shape " + shape_str(t.shape));
    if (t.kind == TensorKind::kConstant) {
      if (t.weight_bytes != t.bytes() || t.weight_offset > p.weights.size() ||
          t.weight_bytes > p.weights.size() - t.weight_offset)
        return invalid_plan("constant tensor '" + t.name + "' lies outside the weights section");
      // Kernels read constants as their element type: an offset off the writer's alignment
      // would make those reads misaligned (found by fuzz_plan).
      if (t.weight_offset % kWeightAlignment)
        return invalid_plan("constant tensor '" + t.name + "' starts at weights offset " + std::to_string(t.weight_offset) +
                            ", not a multiple of " + std::to_string(kWeightAlignment));
      ready[i] = 1;
    }
  }
  for (int32_t t : p.inputs) {
    if (t < 0 || t >= nt || p.tensors[t].kind != TensorKind::kInput)
      return invalid_plan("plan input index " + std::to_string(t) + " is not an input tensor");
    ready[t] = 1;
  }
  for (size_t n = 0; n < p.nodes.size(); ++n) {
    const PlanNode& node = p.nodes[n];
    for (int32_t t : node.inputs) {
      if (t == -1) continue;
      if (t < 0 || t >= nt)
        return invalid_plan("node '" + node.name + "' reads tensor index " + std::to_string(t) +
                            " of " + std::to_string(nt));
      if (!ready[t])
        return invalid_plan("node '" + node.name + "' reads tensor '" + p.tensors[t].name +
                            "' before it is produced");
    }
    for (int32_t t : node.outputs) {
      if (t < 0 || t >= nt)
        return invalid_plan("node '" + node.name + "' writes tensor index " + std::to_string(t));
      if (ready[t] || p.tensors[t].kind != TensorKind::kActivation)
        return invalid_plan("tensor '" + p.tensors[t].name + "' is produced twice");
      ready[t] = 1;
    }
  }
  for (int32_t t : p.outputs)
    if (t < 0 || t >= nt || !ready[t])
      return invalid_plan("plan output index " + std::to_string(t) + " is never produced");
  KILN_TRY(verify_dynamic(p));
  for (const Segment& s : p.segments) {
    if (s.first_node < 0 || s.end_node < s.first_node ||
        s.end_node > static_cast<int32_t>(p.nodes.size()))
      return invalid_plan("segment node range out of bounds");
    for (int32_t t : s.copy_in)
      if (t < 0 || t >= nt) return invalid_plan("segment transfer names tensor index out of range");
  }
  return Status::ok();
}

}  // namespace kiln
