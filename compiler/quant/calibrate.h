// Post-training calibration: runs the FP32 graph on the calibration samples (CPU backend) and
// turns each requested activation's values into a clipping range with the chosen calibrator.
// Ranges are cached in a small checksummed text file (--calib-cache) and reused when present.
#pragma once
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "compiler/quant/calibrator.h"

namespace kiln {

struct TensorRange {
  double amax = 0;           // symmetric clipping range [-amax, amax]
  double clipped_share = 0;  // share of calibration values beyond it
  // max |x| per channel of the last axis over all samples; only for the tensors asked for
  // (SmoothQuant, compiler/quant/smooth_quant.h), empty otherwise.
  std::vector<double> channel_amax;
};

// Ranges of the graph values named in `tensors` (graph inputs or node outputs). The graph must
// be shape-inferred; it is not modified. `report` (may be null) gets the progress bar and the
// per-tensor table. The tensors named in `per_channel` (a subset of `tensors`) also get their
// channel_amax.
Status calibrate_ranges(ir::Graph& g, const std::vector<std::string>& tensors, const BuildOptions& opts,
                        std::FILE* report, std::map<std::string, TensorRange>* out,
                        const std::set<std::string>& per_channel = {});

// The cache: "kiln-calibration-cache 2", "calibrator SPEC", one "AMAX CLIPPED NAME" line per
// tensor, one "channels K A1,...,AK NAME" line per tensor with channel maxima, and a CRC-32 of
// the lines before it. Version 1 caches (no channel lines) are still read. Reading fails
// (naming the file) on any damage.
Status write_calibration_cache(const std::string& path, const std::string& calibrator,
                               const std::map<std::string, TensorRange>& ranges);
Status read_calibration_cache(const std::string& path, const std::string& calibrator,
                              std::map<std::string, TensorRange>* ranges);

}  // namespace kiln
