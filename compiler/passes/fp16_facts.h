// What the ops' float16 forms (OpSchema::fp16_form, registered with each op) mean for one node:
// shared by the passes that place float16 values (convert_fp16, io_precision).
#pragma once
#include "compiler/ir/graph.h"
#include "compiler/ops/op_schema.h"

namespace kiln {

// How the node converts; kNone for other domains.
Fp16 fp16_form(const ir::Node& n);

// Whether `n` takes float16 `v` as is where it reads float32 `v` (Fp16::kReads, kFloatIo).
bool reads_half_at(const ir::Node& n, const ir::Value* v);

}  // namespace kiln
