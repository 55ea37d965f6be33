#include <cstring>

#include "runtime/plan/byte_io.h"
#include "runtime/plan/plan_format.h"
#include "runtime/plan/plan_limits.h"
#include "runtime/plan/plan_verifier.h"

namespace kiln {
namespace {

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

bool read_terms(ByteReader& r, std::vector<DynTerm>* terms) {
  uint64_t n;
  if (!r.count(&n, 12) || n > kMaxDynTerms) return false;
  terms->resize(n);
  for (DynTerm& t : *terms)
    if (!r.u32(&t.vars) || !r.i64(&t.coef)) return false;
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
      case AttrKind::kStrings: {
        std::vector<std::string> v;
        if (!read_strings(r, &v)) return false;
        attrs->set(name, std::move(v));
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

// A kernel choice: a variant name and at most kMaxKernelParams named integers. Whether the
// variant exists and suits the device is the runtime's call (it falls back to the portable kernel).
bool read_choice(ByteReader& r, KernelChoice* c) {
  uint64_t n;
  if (!r.str(&c->variant) || c->variant.size() > 64 || !r.count(&n, 16) || n > kMaxKernelParams) return false;
  c->params.resize(n);
  for (auto& [k, v] : c->params)
    if (!r.str(&k) || k.empty() || k.size() > 64 || !r.i64(&v)) return false;
  return c->variant.empty() ? n == 0 : true;
}

bool read_tensors(ByteReader& r, std::vector<PlanTensor>* tensors) {
  uint64_t n;
  if (!r.count(&n, 16)) return false;
  tensors->resize(n);
  for (PlanTensor& pt : *tensors) {
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
  return true;
}

bool read_nodes(ByteReader& r, std::vector<PlanNode>* nodes) {
  uint64_t n;
  if (!r.count(&n, 16)) return false;
  nodes->resize(n);
  for (PlanNode& node : *nodes) {
    if (!r.str(&node.name) || !r.str(&node.op) || !read_attrs(r, &node.attrs) ||
        !read_ints(r, &node.inputs) || !read_ints(r, &node.outputs) ||
        !read_backend(r, &node.backend) || !r.str(&node.kernel) || !read_strings(r, &node.fused) ||
        !read_choice(r, &node.choice) || !read_ints(r, &node.subgraphs))
      return false;
  }
  return true;
}

bool read_meta(ByteReader& r, Plan* p) {
  DeviceCaps& t = p->target;
  if (!r.str(&p->writer_version) || !r.str(&p->model_name) || !r.str(&t.kind) || !r.str(&t.name) ||
      !r.str(&t.vendor) || !r.str(&t.driver_version) || !r.str(&t.opencl_c_version) ||
      !read_strings(r, &t.extensions) || !r.u64(&t.global_mem_bytes) ||
      !r.u64(&t.max_alloc_bytes) || !r.u64(&t.local_mem_bytes) || !r.u32(&t.compute_units) ||
      !r.u64(&t.device_type) || !r.u32(&t.compute_capability) || !read_strings(r, &p->required_caps))
    return false;
  uint64_t n;
  if (!read_tensors(r, &p->tensors) || !read_nodes(r, &p->nodes)) return false;
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
  if (!r.count(&n, 33)) return false;
  p->dyn_exprs.resize(n);
  for (DynExpr& e : p->dyn_exprs) {
    uint8_t target;
    uint64_t divs;
    if (!r.u8(&target) || target > static_cast<uint8_t>(DynTarget::kAttrInts) || !r.i32(&e.index) ||
        !r.str(&e.attr) || !r.u32(&e.pos) || !read_terms(r, &e.terms) || !r.count(&divs, 17) || divs > kMaxDynDivs)
      return false;
    e.target = static_cast<DynTarget>(target);
    e.divs.resize(divs);
    for (DynDiv& d : e.divs) {
      uint8_t kind;
      if (!r.u8(&kind) || kind > 1 || !r.i64(&d.divisor) || !read_terms(r, &d.terms)) return false;
      d.ceil = kind == 1;
    }
  }
  if (!r.count(&n, 48)) return false;
  p->graphs.resize(n);
  for (PlanGraph& g : p->graphs)
    if (!read_tensors(r, &g.tensors) || !read_nodes(r, &g.nodes) || !read_ints(r, &g.inputs) ||
        !read_ints(r, &g.outputs) || !read_ints(r, &g.captures) || !read_ints(r, &g.capture_operands))
      return false;
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

}  // namespace kiln
