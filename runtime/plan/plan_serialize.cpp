#include <cstring>

#include "runtime/plan/byte_io.h"
#include "runtime/plan/plan_format.h"

namespace kiln {
namespace {

void write_strings(ByteWriter& w, const std::vector<std::string>& v) {
  w.u64(v.size());
  for (const auto& s : v) w.str(s);
}

void write_attrs(ByteWriter& w, const Attributes& attrs) {
  w.u64(attrs.all().size());
  for (const auto& [name, v] : attrs.all()) {
    w.str(name);
    w.u8(static_cast<uint8_t>(attr_kind(v)));
    switch (attr_kind(v)) {
      case AttrKind::kInt: w.i64(std::get<int64_t>(v)); break;
      case AttrKind::kFloat: w.f32(std::get<float>(v)); break;
      case AttrKind::kString: w.str(std::get<std::string>(v)); break;
      case AttrKind::kInts: {
        const auto& xs = std::get<std::vector<int64_t>>(v);
        w.u64(xs.size());
        for (int64_t x : xs) w.i64(x);
        break;
      }
      case AttrKind::kFloats: {
        const auto& xs = std::get<std::vector<float>>(v);
        w.u64(xs.size());
        for (float x : xs) w.f32(x);
        break;
      }
      case AttrKind::kTensor: {
        const auto& t = *std::get<std::shared_ptr<const HostTensor>>(v);
        w.i32(static_cast<int32_t>(t.dtype()));
        w.u64(t.shape().size());
        for (int64_t d : t.shape()) w.i64(d);
        w.u64(t.size_bytes());
        w.raw(t.data(), t.size_bytes());
        break;
      }
      case AttrKind::kStrings: write_strings(w, std::get<std::vector<std::string>>(v)); break;
    }
  }
}

void write_terms(ByteWriter& w, const std::vector<DynTerm>& terms) {
  w.u64(terms.size());
  for (const DynTerm& t : terms) {
    w.u32(t.vars);
    w.i64(t.coef);
  }
}

void write_ints(ByteWriter& w, const std::vector<int32_t>& v) {
  w.u64(v.size());
  for (int32_t x : v) w.i32(x);
}

void write_tensors(ByteWriter& w, const std::vector<PlanTensor>& tensors) {
  w.u64(tensors.size());
  for (const PlanTensor& pt : tensors) {
    w.str(pt.name);
    w.i32(static_cast<int32_t>(pt.dtype));
    w.u64(pt.shape.size());
    for (int64_t d : pt.shape) w.i64(d);
    w.u8(static_cast<uint8_t>(pt.kind));
    w.u64(pt.weight_offset);
    w.u64(pt.weight_bytes);
  }
}

void write_nodes(ByteWriter& w, const std::vector<PlanNode>& nodes) {
  w.u64(nodes.size());
  for (const PlanNode& n : nodes) {
    w.str(n.name);
    w.str(n.op);
    write_attrs(w, n.attrs);
    write_ints(w, n.inputs);
    write_ints(w, n.outputs);
    w.u8(static_cast<uint8_t>(n.backend));
    w.str(n.kernel);
    write_strings(w, n.fused);
    w.str(n.choice.variant);
    w.u64(n.choice.params.size());
    for (const auto& [k, v] : n.choice.params) {
      w.str(k);
      w.i64(v);
    }
    write_ints(w, n.subgraphs);
  }
}

std::vector<uint8_t> write_meta(const Plan& p) {
  ByteWriter w;
  w.str(p.writer_version);
  w.str(p.model_name);
  const DeviceCaps& t = p.target;
  w.str(t.kind);
  w.str(t.name);
  w.str(t.vendor);
  w.str(t.driver_version);
  w.str(t.opencl_c_version);
  write_strings(w, t.extensions);
  w.u64(t.global_mem_bytes);
  w.u64(t.max_alloc_bytes);
  w.u64(t.local_mem_bytes);
  w.u32(t.compute_units);
  w.u64(t.device_type);
  w.u32(t.compute_capability);
  write_strings(w, p.required_caps);

  write_tensors(w, p.tensors);
  write_nodes(w, p.nodes);
  write_ints(w, p.inputs);
  write_ints(w, p.outputs);
  w.u64(p.segments.size());
  for (const Segment& s : p.segments) {
    w.u8(static_cast<uint8_t>(s.backend));
    w.i32(s.first_node);
    w.i32(s.end_node);
    write_ints(w, s.copy_in);
  }
  w.u64(p.dyn_vars.size());
  for (const DynVar& v : p.dyn_vars) {
    w.str(v.name);
    w.i64(v.min);
    w.i64(v.max);
    w.i64(v.opt);
  }
  w.u64(p.dyn_inputs.size());
  for (const DynInputDim& d : p.dyn_inputs) {
    w.i32(d.tensor);
    w.u32(d.dim);
    w.u32(d.var);
  }
  w.u64(p.dyn_exprs.size());
  for (const DynExpr& e : p.dyn_exprs) {
    w.u8(static_cast<uint8_t>(e.target));
    w.i32(e.index);
    w.str(e.attr);
    w.u32(e.pos);
    write_terms(w, e.terms);
    w.u64(e.divs.size());
    for (const DynDiv& d : e.divs) {
      w.u8(d.ceil ? 1 : 0);
      w.i64(d.divisor);
      write_terms(w, d.terms);
    }
  }
  w.u64(p.graphs.size());
  for (const PlanGraph& g : p.graphs) {
    write_tensors(w, g.tensors);
    write_nodes(w, g.nodes);
    write_ints(w, g.inputs);
    write_ints(w, g.outputs);
    write_ints(w, g.captures);
    write_ints(w, g.capture_operands);
  }
  return std::move(w.bytes());
}

std::vector<uint8_t> write_kernels(const Plan& p) {
  ByteWriter w;
  w.u64(p.kernel_sources.size());
  for (const auto& [name, src] : p.kernel_sources) {
    w.str(name);
    w.str(src);
  }
  return std::move(w.bytes());
}

}  // namespace

std::vector<uint8_t> serialize_plan(const Plan& plan) {
  std::vector<uint8_t> meta = write_meta(plan);
  std::vector<uint8_t> kernels = write_kernels(plan);
  struct Sec {
    PlanSection kind;
    const std::vector<uint8_t>* bytes;
  };
  const Sec secs[] = {{PlanSection::kMeta, &meta},
                      {PlanSection::kWeights, &plan.weights},
                      {PlanSection::kKernels, &kernels}};
  const uint32_t count = 3;

  ByteWriter w;
  w.raw(kPlanMagic, 8);
  w.u32(kPlanFormatVersion);
  w.u32(kPlanHeaderBytes);
  w.u64(0);  // file size, patched below
  w.u32(0);  // crc, patched below
  w.u32(count);
  w.u64(kPlanHeaderBytes);  // section table follows the header
  w.pad_to(kPlanHeaderBytes);
  const size_t table_at = w.size();
  for (uint32_t i = 0; i < count; ++i) {
    w.u32(0);
    w.u32(0);
    w.u64(0);
    w.u64(0);
  }
  uint64_t offsets[3];
  for (uint32_t i = 0; i < count; ++i) {
    w.pad_to(kWeightAlignment);
    offsets[i] = w.size();
    w.raw(secs[i].bytes->data(), secs[i].bytes->size());
  }
  std::vector<uint8_t>& b = w.bytes();
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t* e = b.data() + table_at + i * 24;
    uint32_t kind = static_cast<uint32_t>(secs[i].kind);
    uint64_t size = secs[i].bytes->size();
    std::memcpy(e, &kind, 4);
    std::memcpy(e + 8, &offsets[i], 8);
    std::memcpy(e + 16, &size, 8);
  }
  uint64_t file_size = b.size();
  std::memcpy(b.data() + 16, &file_size, 8);
  uint32_t crc = crc32(b.data() + kPlanHeaderBytes, b.size() - kPlanHeaderBytes);
  std::memcpy(b.data() + 24, &crc, 4);
  return std::move(b);
}

}  // namespace kiln
