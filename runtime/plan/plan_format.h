// The plan file: a fixed 64-byte header, a section table, then sections.
//
//   header   magic "KILNPLAN" | u32 format_version | u32 header_bytes (64) | u64 file_bytes |
//            u32 crc32 of bytes [64, file_bytes) | u32 section_count | u64 section_table_offset |
//            zero padding to 64
//   table    section_count x { u32 kind | u32 reserved | u64 offset | u64 size }
//   META     graph: tensors, nodes, segments, target device (with its CL_DEVICE_TYPE), required
//            capabilities, dynamic-shape tables (ranges, input dims, shape expressions),
//            subgraphs of control-flow nodes (each: tensors, nodes, inputs, outputs, captures)
// Version 2 added the device type and the dynamic-shape tables; version 3 the target's compute
// capability and each node's kernel choice (variant name and typed parameters). Version 4 added
// the subgraphs (a list of subgraph indices on every node, the subgraph table after the
// dynamic-shape tables; subgraph nodes carry a kernel choice too, always empty: they run on the
// CPU) and string-list attributes (kind 7). Version 5 made shape expressions nestable floor/ceil
// divisions by constants: each expression's term list (u64 count <= 64 of {u32 atoms, i64 coef})
// is followed by its divisions (u64 count <= 24 of {u8 0 floor / 1 ceil, i64 divisor > 0, term
// list}); an atom set's bit nv + j is division j, which may read only the variables and the
// divisions before it. Older versions are refused: rebuild the plan.
//   WEIGHTS  constant tensor bytes, each 64-byte aligned; the section itself starts 64-aligned
//   KERNELS  generated OpenCL C sources by name
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln {

constexpr char kPlanMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
constexpr uint32_t kPlanFormatVersion = 5;
constexpr uint32_t kPlanHeaderBytes = 64;
constexpr uint64_t kWeightAlignment = 64;

enum class PlanSection : uint32_t { kMeta = 1, kWeights = 2, kKernels = 3 };

// Encodes a plan; plan.format_version is ignored (the current version is written).
std::vector<uint8_t> serialize_plan(const Plan& plan);

// Decodes and fully verifies untrusted bytes. Every failure is kInvalidPlan with a message
// saying what was wrong (truncated, bad checksum, index out of range, ...).
Status parse_plan(const uint8_t* data, size_t size, Plan* out);

// Everything parse_plan checks after decoding, shared with the compiler's self-check and
// context creation: verify_plan_structure, then every node re-derived by its op rule
// (runtime/plan/plan_verifier.h).
Status verify_plan(const Plan& plan);

// The structural half (runtime/plan/plan_verify.cpp): indices in range, nodes in topological
// order, each activation produced once, constants inside the weights at the writer's alignment,
// dynamic-shape tables consistent, and the same for every subgraph, with its ownership and
// captures.
Status verify_plan_structure(const Plan& plan);

// parse_plan without the op rules: for tests of the file format itself (plans of made-up ops).
// Contexts verify fully whatever the plan's origin.
Status decode_plan(const uint8_t* data, size_t size, Plan* out);

}  // namespace kiln
