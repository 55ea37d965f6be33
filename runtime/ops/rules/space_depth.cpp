// Rules of the space_depth family (runtime forms written by compiler/ops/space_depth.cpp):
//   DepthToSpace (x) {blocksize, crd}   SpaceToDepth (x) {blocksize, channels_last, channels};
//   4-D, any dtype (bytes). channels_last, channels: runtime/ops/channels_last.h.
#include "runtime/ops/channels_last.h"
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status space_depth_rule(RuleContext& c) {
  const bool to_space = c.node().op == "DepthToSpace";
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  int64_t b, crd = 0;
  KILN_TRY(c.int_attr_in("blocksize", 0, 1, rules::kMaxGeometry, &b));
  if (to_space) KILN_TRY(c.int_attr_in("crd", 0, 0, 1, &crd));
  const Shape& x = c.shape(0);
  if (x.size() != 4) return c.fail("input must be 4-D, got " + shape_str(x));
  int64_t bb;
  if (!mul_ok(b, b, &bb)) return c.fail("blocksize " + std::to_string(b) + " is too large");
  Shape out;
  if (to_space) {
    int64_t h, w;
    if (x[1] % bb || !mul_ok(x[2], b, &h) || !mul_ok(x[3], b, &w))
      return c.fail("channels of " + shape_str(x) + " are not a multiple of blocksize^2 " + std::to_string(bb));
    out = {x[0], x[1] / bb, h, w};
  } else {
    int64_t last, channels, ch;
    KILN_TRY(c.int_attr_in(kAttrChannelsLast, 0, 0, 1, &last));
    KILN_TRY(c.int_attr_in("channels", x[1], x[1], rules::kMaxGeometry, &channels));
    if (!last && channels != x[1]) return c.fail("channels " + std::to_string(channels) + " needs channels_last");
    if (x[2] % b || x[3] % b || !mul_ok(channels, bb, &ch))
      return c.fail("height and width of " + shape_str(x) + " are not multiples of blocksize " + std::to_string(b));
    out = last ? Shape{x[0], x[2] / b, x[3] / b, ch} : Shape{x[0], ch, x[2] / b, x[3] / b};
  }
  c.set_output(0, c.dtype(0), out);
  return Status::ok();
}

}  // namespace

void register_space_depth_rules(RuleRegistry& r) {
  r.add("DepthToSpace", space_depth_rule);
  r.add("SpaceToDepth", space_depth_rule);
}

}  // namespace kiln
