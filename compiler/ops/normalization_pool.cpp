// MaxPool and AveragePool (1-, 2- and 3-D).
//
// Runtime form: attrs kernel_shape, strides, dilations, pads (explicit [begins..., ends...],
// auto_pad already resolved), plus storage_order (MaxPool) or count_include_pad (AveragePool).
// ceil_mode only affects the output shape, which the plan fixes; kernels clip windows to the
// input and, for count_include_pad, to the padded input [-pad_begin, in + pad_end).
#include <algorithm>

#include "compiler/ops/normalization_internal.h"

namespace kiln::norm_schema {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

Status infer_pool(InferContext& c, bool is_max) {
  KILN_TRY(c.require_inputs(1, 1));
  if (is_max)
    KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kInt8, DType::kUInt8}));
  else
    KILN_TRY(c.require_dtype(0, {DType::kFloat32}));
  const Shape& in = c.input_shape(0);
  if (in.size() < 3) return c.fail("X must have rank >= 3 (N x C x D1 ...), got " + shape_str(in));
  const size_t nsp = in.size() - 2;
  if (nsp > 3) return c.fail_unsupported(std::to_string(nsp) + "-D pooling is not supported (1-D to 3-D)");
  const Attributes& at = c.attrs();
  if (!at.has("kernel_shape")) return c.fail("kernel_shape is required");
  const std::vector<int64_t> kernel = at.get_ints("kernel_shape");
  std::vector<int64_t> strides = at.get_ints("strides", std::vector<int64_t>(nsp, 1));
  // Dilations exist on MaxPool from 10 and AveragePool from 19.
  const bool has_dil = is_max ? c.version() >= 10 : c.version() >= 19;
  std::vector<int64_t> dil = has_dil ? at.get_ints("dilations", std::vector<int64_t>(nsp, 1))
                                     : std::vector<int64_t>(nsp, 1);
  std::vector<int64_t> pads = at.get_ints("pads", std::vector<int64_t>(2 * nsp, 0));
  if (kernel.size() != nsp || strides.size() != nsp || dil.size() != nsp || pads.size() != 2 * nsp)
    return c.fail("kernel_shape " + ints_str(kernel) + ", strides " + ints_str(strides) + ", dilations " +
                  ints_str(dil) + " and pads " + ints_str(pads) + " do not match " + std::to_string(nsp) +
                  " spatial dims of X " + shape_str(in));
  for (size_t i = 0; i < nsp; ++i) {
    if (kernel[i] < 1 || strides[i] < 1 || dil[i] < 1)
      return c.fail("kernel_shape, strides and dilations must be >= 1");
    if (pads[i] < 0 || pads[i + nsp] < 0) return c.fail("pads must be >= 0, got " + ints_str(pads));
    for (int64_t v : {kernel[i], strides[i], dil[i], pads[i], pads[i + nsp], in[i + 2]})
      if (v > kMaxGeometry)
        return c.fail_unsupported("X " + shape_str(in) + ", kernel_shape, strides, dilations or pads hold a value above 2^30");
  }
  const std::string auto_pad = at.get_string("auto_pad", "NOTSET");
  const bool ceil_mode = c.version() >= 10 && at.get_int("ceil_mode", 0) != 0;
  Shape out = {in[0], in[1]};
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t x = in[i + 2];
    const int64_t eff = (kernel[i] - 1) * dil[i] + 1;
    int64_t o = 0;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      o = (x + strides[i] - 1) / strides[i];
      const int64_t total = std::max<int64_t>(0, (o - 1) * strides[i] + eff - x);
      const int64_t small = total / 2;
      pads[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      pads[i + nsp] = total - pads[i];
    } else if (auto_pad == "VALID") {
      pads[i] = pads[i + nsp] = 0;
      o = x >= eff ? (x - eff) / strides[i] + 1 : 0;
    } else if (auto_pad == "NOTSET") {
      const int64_t span = x + pads[i] + pads[i + nsp] - eff;
      if (span < 0) {
        o = 0;
      } else if (ceil_mode) {
        o = (span + strides[i] - 1) / strides[i] + 1;
        // The last window must start inside the input or its begin padding.
        if ((o - 1) * strides[i] >= x + pads[i]) --o;
      } else {
        o = span / strides[i] + 1;
      }
    } else {
      return c.fail("unknown auto_pad '" + auto_pad + "'");
    }
    if (o < 1)
      return c.fail("window " + ints_str(kernel) + " (dilations " + ints_str(dil) + ") does not fit X " +
                    shape_str(in) + " with pads " + ints_str(pads));
    out.push_back(o);
  }
  Attributes a;
  // The runtime's rule re-derives the output shape (runtime/ops/rules/normalization.cpp).
  if (ceil_mode && auto_pad == "NOTSET") a.set("ceil_mode", int64_t{1});
  a.set("kernel_shape", kernel);
  a.set("strides", strides);
  a.set("dilations", dil);
  a.set("pads", pads);
  if (is_max) {
    const int64_t order = c.version() >= 8 ? at.get_int("storage_order", 0) : 0;
    if (order != 0 && order != 1) return c.fail("storage_order must be 0 or 1");
    a.set("storage_order", order);
    if (c.num_outputs() > 1 && c.node().outputs[1]) {
      if (c.version() < 8) return c.fail("MaxPool before version 8 has one output");
      c.set_output(1, DType::kInt64, out);
    }
  } else {
    a.set("count_include_pad", int64_t{at.get_int("count_include_pad", 0) != 0 ? 1 : 0});
  }
  c.mutable_attrs() = a;
  c.set_output(0, c.input_dtype(0), out);
  return Status::ok();
}

}  // namespace

Status infer_max_pool(InferContext& c) { return infer_pool(c, true); }
Status infer_average_pool(InferContext& c) { return infer_pool(c, false); }

}  // namespace kiln::norm_schema
