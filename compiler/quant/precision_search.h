// --precision best and --accuracy-budget X: choose each layer's precision by measurement (and
// the accuracy check of every calibrated INT8/FP8 build: the same search with the budget
// kCheckAccuracyBudget).
//
// Both build candidate plans in-process, run them on the calibration samples on the build's
// target device and compare every output with an FP32 plan of the model (cpu backend). The
// error of a plan is the largest relative L2 error of any output over the samples (an output
// that a Concat joins: of any of its parts, compiler/quant/accuracy.h's output_parts).
//
// 1. Each candidate precision (the --precision given, or for `best` every reduced precision)
//    is built for the whole model; one that fails as unsupported is left out, with its reason.
//    The layers are the ONNX nodes that build runs in reduced precision.
// 2. Sensitivity: each layer alone in each candidate precision, the rest FP32: its output error
//    and its cost (the cost model's estimate of the plan, or the measured latency with --tune).
// 3. `best` starts every layer at its fastest candidate that is faster than FP32 at all; a
//    budget build starts every layer at --precision. The moves towards FP32 are ordered by the
//    solo error of each layer's current precision (worst first; `best` steps a layer through
//    its slower candidates before FP32), and a binary search finds the shortest prefix of
//    moves that brings the plan within the budget (each step a real build and measurement).
// The result is the plan the search settled on (--layer-precision names given by the user are
// kept and not searched); the decisions, and the --precision / --layer-precision flags that
// build the same plan, are printed to opts.report.
#pragma once
#include <functional>

#include "compiler/compiler.h"

namespace kiln {

// Applied by `best` without --accuracy-budget.
constexpr double kDefaultAccuracyBudget = 0.01;

// The accuracy check of a calibrated INT8/FP8 build without --accuracy-budget (unless
// --no-accuracy-check): the same search with this budget. A plan within it costs one extra
// build and a run over the calibration samples; a plan beyond it keeps its most sensitive
// layers in FP32 and says which and why. Every sample counts: on PP-OCRv4's recognizer the
// worst of 32 samples moved 23 layers and left 11 of 78 held-out text lines misread, the worst
// of all 64 moved 33 and left 2. 0.1 is a "broken plan" line, not an accuracy target: at 0.1
// every calibration sample's outputs still point the same way as FP32's (cosine >= 0.995),
// while the plans it catches are far beyond it (PP-OCRv4's recognizer in INT8: 0.47, with 40%
// of the text lines misread).
constexpr double kCheckAccuracyBudget = 0.1;

// Whether `opts` asks for a search: --precision best, an --accuracy-budget, or the accuracy
// check of a calibrated INT8/FP8 build (a dynamic plan searches at its --shapes point).
bool needs_precision_search(const BuildOptions& opts);

// Builds a plan of the model being searched with the given options (no search).
using PlanBuildFn = std::function<Status(const BuildOptions&, Plan*)>;

// `chosen` (may be null) gets options that build the same plan without a search (the precision
// and --layer-precision overrides it settled on): how a dynamic plan's points take the choice
// made at its --shapes point.
Status build_with_precision_search(const PlanBuildFn& build, const BuildOptions& opts, Plan* out,
                                   BuildOptions* chosen = nullptr);

}  // namespace kiln
