// Dynamic shapes for statically shaped plans.
//
// The whole pipeline (inference, folding, fusion, partitioning) stays static: the model is built
// at every corner of the --min-shapes/--max-shapes box (2^k builds for k dynamic dims) and at
// held-out points inside it (the --shapes point, the centre, min+1..3, max-1..2, a third, 2/5
// and 3/4 of the way, and with several dims each one at its midpoint with the others at the
// max). A model that does not take a held-out size (a detector takes multiples of 32) is probed
// instead on the finest lattice min + j*2^n (2^n <= 64 dividing every min and max) that builds.
// The plans must agree on everything but integers; every tensor dim and integer attribute that
// varies becomes a formula (runtime/plan/plan.h DynExpr): a multilinear polynomial with integer
// coefficients of the dynamic dims, fitted exactly from the corners, or else derived from the
// dims of the node's operands (m*X+e, floor((X+c)/s)+e for a strided window, m*X*Y+e for a
// flatten), nesting floor divisions; every formula is checked at every probe. The max-corner
// plan is kept (memory is planned there) with those formulas attached. Refused with an error
// naming the node and the value: a value none of those forms fits, a constant tensor or a
// non-integer attribute that changes, a graph that changes structure, a tensor dim that is not
// largest at the max point. INT8 calibration runs at the --shapes point only; the other points
// reuse its ranges (cache).
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
