// Dynamic shapes for statically shaped plans.
//
// The whole pipeline (inference, folding, fusion, partitioning) stays static: the model is built
// at every corner of the --min-shapes/--max-shapes box (2^k builds for k dynamic dims) and at a
// few held-out points inside it (the --shapes point, the centre, min+1, max-1, min+range/3, and
// with several dims each one at its midpoint with the others at the max). The plans must
// agree on everything but integers; every tensor dim and integer attribute that varies becomes
// a polynomial, multilinear in the dynamic dims with integer coefficients, fitted exactly from
// the corners and checked at the held-out points. The max-corner plan is kept (memory is planned
// there) with those polynomials attached. Refused with an error naming the node and the value:
// anything not multilinear (floor division by a conv stride over a dynamic spatial dim), a
// constant tensor or a non-integer attribute that changes, a graph that changes structure, a
// tensor dim that shrinks as an input dim grows (the max point would not bound memory). INT8
// calibration runs at the --shapes point only; the other points reuse its ranges (cache).
#pragma once
#include <functional>

#include "compiler/compiler.h"

namespace kiln {

namespace ir {
class Graph;
}

// `import` fills a fresh graph from the model (called once per shape point).
Status build_dynamic_plan(const std::function<Status(ir::Graph*)>& import, const BuildOptions& opts, Plan* out);

}  // namespace kiln
