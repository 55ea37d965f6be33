// kiln_plan_inspect_json: what `kiln inspect` prints, as a JSON document for programs (the
// Python package's plan.inspect()).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "runtime/capi/capi_internal.h"
#include "runtime/exec/memory_plan.h"
#include "runtime/ops/node_precision.h"

using kiln::capi::guarded;

namespace {

std::string quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::string ints(const std::vector<int64_t>& v) {
  std::string o = "[";
  for (size_t i = 0; i < v.size(); ++i) o += (i ? "," : "") + std::to_string(v[i]);
  return o + "]";
}

std::string names(const std::vector<kiln::PlanTensor>& all, const std::vector<int32_t>& tensors) {
  std::string o = "[";
  for (size_t i = 0; i < tensors.size(); ++i)
    o += (i ? "," : "") + (tensors[i] < 0 ? std::string("null") : quote(all[tensors[i]].name));
  return o + "]";
}
std::string names(const kiln::Plan& p, const std::vector<int32_t>& tensors) { return names(p.tensors, tensors); }

std::string indices(const std::vector<int32_t>& v) {
  std::string o = "[";
  for (size_t i = 0; i < v.size(); ++i) o += (i ? "," : "") + std::to_string(v[i]);
  return o + "]";
}

// Control-flow subgraphs (Plan::graphs, run on the cpu by the node whose "subgraphs" lists
// their index): formal inputs, captures, outputs and nodes.
std::string subgraphs(const kiln::Plan& p) {
  std::string o = "[";
  for (size_t gi = 0; gi < p.graphs.size(); ++gi) {
    const kiln::PlanGraph& g = p.graphs[gi];
    o += (gi ? "," : "") + std::string("{\"inputs\":") + names(g.tensors, g.inputs) +
         ",\"captures\":" + names(g.tensors, g.captures) + ",\"outputs\":" + names(g.tensors, g.outputs) +
         ",\"nodes\":[";
    for (size_t i = 0; i < g.nodes.size(); ++i)
      o += (i ? "," : "") + std::string("{\"name\":") + quote(g.nodes[i].name) + ",\"op\":" + quote(g.nodes[i].op) +
           ",\"subgraphs\":" + indices(g.nodes[i].subgraphs) + "}";
    o += "]}";
  }
  return o + "]";
}

std::string tensor(const kiln::Plan& p, int32_t t, bool with_range) {
  const kiln::PlanTensor& pt = p.tensors[t];
  std::string o = "{\"name\":" + quote(pt.name) + ",\"dtype\":" + quote(kiln::dtype_name(pt.dtype)) +
                  ",\"shape\":" + ints(pt.shape);
  if (with_range) {
    kiln::Shape lo = pt.shape;
    for (const kiln::DynInputDim& d : p.dyn_inputs)
      if (d.tensor == t && d.dim >= 0 && static_cast<size_t>(d.dim) < lo.size() && d.var >= 0 &&
          static_cast<size_t>(d.var) < p.dyn_vars.size())
        lo[d.dim] = p.dyn_vars[d.var].min;
    o += ",\"min_shape\":" + ints(lo) + ",\"max_shape\":" + ints(pt.shape);
  }
  return o + "}";
}

std::string inspect_json(const kiln::Plan& p) {
  std::string o = "{";
  o += "\"format_version\":" + std::to_string(p.format_version);
  o += ",\"writer_version\":" + quote(p.writer_version);
  o += ",\"model\":" + quote(p.model_name);
  o += ",\"target\":{\"kind\":" + quote(p.target.kind) + ",\"name\":" + quote(p.target.name) +
       ",\"driver_version\":" + quote(p.target.driver_version) + "}";
  o += ",\"required_capabilities\":[";
  for (size_t i = 0; i < p.required_caps.size(); ++i) o += (i ? "," : "") + quote(p.required_caps[i]);
  o += "]";
  o += ",\"weight_bytes\":" + std::to_string(p.weights.size());
  o += ",\"constant_tensors\":" +
       std::to_string(std::count_if(p.tensors.begin(), p.tensors.end(),
                                    [](const kiln::PlanTensor& t) { return t.kind == kiln::TensorKind::kConstant; }));
  std::vector<kiln::Backend> backends;
  for (const kiln::PlanNode& n : p.nodes) backends.push_back(n.backend);
  const kiln::ArenaPlan host = kiln::plan_arena(p, backends, kiln::Backend::kCpu, 64);
  const kiln::SharedBuffersPlan dev = kiln::plan_shared_buffers(p, backends, kiln::Backend::kOpenCL, 256);
  o += ",\"peak_memory\":{\"host_bytes\":" + std::to_string(host.size) +
       ",\"device_bytes\":" + std::to_string(dev.total) + ",\"device_buffers\":" + std::to_string(dev.sizes.size()) + "}";
  o += ",\"dynamic_dims\":[";
  for (size_t v = 0; v < p.dyn_vars.size(); ++v) {
    const kiln::DynVar& dv = p.dyn_vars[v];
    o += (v ? "," : "") + std::string("{\"name\":") + quote(dv.name) + ",\"min\":" + std::to_string(dv.min) +
         ",\"max\":" + std::to_string(dv.max) + ",\"tuned_for\":" + std::to_string(dv.opt) + ",\"inputs\":[";
    bool first = true;
    for (const kiln::DynInputDim& d : p.dyn_inputs)
      if (d.var == static_cast<int32_t>(v) && d.tensor >= 0 && static_cast<size_t>(d.tensor) < p.tensors.size()) {
        o += (first ? "" : ",") + std::string("{\"input\":") + quote(p.tensors[d.tensor].name) +
             ",\"dim\":" + std::to_string(d.dim) + "}";
        first = false;
      }
    o += "]}";
  }
  o += "],\"inputs\":[";
  for (size_t i = 0; i < p.inputs.size(); ++i) o += (i ? "," : "") + tensor(p, p.inputs[i], true);
  o += "],\"outputs\":[";
  for (size_t i = 0; i < p.outputs.size(); ++i) o += (i ? "," : "") + tensor(p, p.outputs[i], false);
  o += "],\"segments\":[";
  for (size_t s = 0; s < p.segments.size(); ++s) {
    const kiln::Segment& seg = p.segments[s];
    o += (s ? "," : "") + std::string("{\"backend\":") + quote(kiln::backend_name(seg.backend)) +
         ",\"first_node\":" + std::to_string(seg.first_node) + ",\"end_node\":" + std::to_string(seg.end_node) +
         ",\"transfers_in\":" + names(p, seg.copy_in) + "}";
  }
  o += "],\"nodes\":[";
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const kiln::PlanNode& n = p.nodes[i];
    o += (i ? "," : "") + std::string("{\"name\":") + quote(n.name) + ",\"op\":" + quote(n.op) +
         ",\"backend\":" + quote(kiln::backend_name(n.backend)) + ",\"kernel\":" + quote(n.kernel) +
         ",\"variant\":" + quote(n.choice.empty() ? "" : n.choice.str()) +
         ",\"precision\":" + quote(kiln::node_precision(p, n)) + ",\"inputs\":" + names(p, n.inputs) +
         ",\"outputs\":" + names(p, n.outputs) + ",\"attributes\":" + quote(n.attrs.to_string()) +
         ",\"subgraphs\":" + indices(n.subgraphs) + ",\"fused\":[";
    for (size_t f = 0; f < n.fused.size(); ++f) o += (f ? "," : "") + quote(n.fused[f]);
    o += "]}";
  }
  return o + "],\"subgraphs\":" + subgraphs(p) + "}";
}

}  // namespace

extern "C" kiln_status kiln_plan_inspect_json(const kiln_plan* plan, char* buffer, size_t capacity, size_t* needed) {
  return guarded(__func__, [&] {
    auto p = kiln::capi::plan_of(plan);
    if (!p) return kiln::invalid_argument("kiln_plan_inspect_json: NULL or released plan");
    if (!needed || (capacity && !buffer)) return kiln::invalid_argument("kiln_plan_inspect_json: NULL argument");
    const std::string json = inspect_json(*p);
    *needed = json.size() + 1;
    if (capacity) {
      const size_t n = std::min(capacity - 1, json.size());
      std::memcpy(buffer, json.data(), n);
      buffer[n] = '\0';
    }
    return kiln::Status::ok();
  });
}
