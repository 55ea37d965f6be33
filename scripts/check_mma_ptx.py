#!/usr/bin/env python3
"""Compiles the tensor-core kernel variant's PTX path (kernels/mma_gemm.cl with -D KILN_PTX=1)
for sm_90 with the CUDA toolkit's nvcc + ptxas, without a GPU: the inline PTX (mma.sync for
f16 / s8,u8 / e4m3,e5m2 / tf32, cvt.rna.tf32, ldmatrix, cp.async) is checked by the same assembler NVIDIA's OpenCL
driver uses, and ptxas reports registers, spills and shared memory per configuration. The wgmma
tiles (-D MMA_WGMMA=1) are compiled to PTX, opened as the runtime opens them (//@@ comments,
sm_90a, .maxnreg; runtime/device/ptx_sm90a.cpp) and assembled for sm_90a; "wgmma SERIALIZED"
flags a configuration where ptxas had to serialize the asynchronous products.

The OpenCL C sources are assembled in the runtime's order (runtime/backends/opencl/
mma_gemm.cpp: qgemm_geometry, the family prelude with its epilogue, mma_ops, mma_gemm) and
compiled as CUDA through a small shim (OpenCL built-ins and address spaces mapped onto CUDA's;
kernel-scope __local arrays become __shared__).

With cuobjdump (the toolkit's, or PyPI's nvidia-cuda-cuobjdump) on PATH or beside nvcc, the 8-bit
families' output stages are also checked for branch regions (MAX_STAGE_BRANCH_REGIONS).

Usage: check_mma_ptx.py [--nvcc nvcc] [--arch sm_90] [--quick]
Exit status 0 when every configuration compiles; 77 (skip) when nvcc is not installed.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

SHIM = r"""
#include <cuda_fp16.h>
typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef __half half;
#define __kernel extern "C" __global__
#define __global
#define __local
#define __private
#define __constant const
#define inline __device__ inline
#define reqd_work_group_size(x, y, z) unused
#define CLK_LOCAL_MEM_FENCE 0
__device__ inline void barrier(int) { __syncthreads(); }
__device__ inline uint get_local_id(int d) { return d == 0 ? threadIdx.x : d == 1 ? threadIdx.y : threadIdx.z; }
__device__ inline uint get_group_id(int d) { return d == 0 ? blockIdx.x : d == 1 ? blockIdx.y : blockIdx.z; }
__device__ inline uint get_num_groups(int d) { return d == 0 ? gridDim.x : d == 1 ? gridDim.y : gridDim.z; }
#define CLK_GLOBAL_MEM_FENCE 0
__device__ inline int atomic_inc(int* p) { return atomicAdd(p, 1); }
__device__ inline uint as_uint(float x) { return __float_as_uint(x); }
__device__ inline float as_float(uint x) { return __uint_as_float(x); }
__device__ inline int clamp(int x, int lo, int hi) { return min(max(x, lo), hi); }
__device__ inline float vload_half(long i, const half* p) { return __half2float(p[i]); }
__device__ inline void vstore_half_rte(float v, long i, half* p) { p[i] = __float2half_rn(v); }
__device__ inline void vstore_half2_rte(float2 v, long i, half* p) { *(__half2*)(p + 2 * i) = __floats2half2_rn(v.x, v.y); }
__device__ inline void vstore2(float2 v, long i, float* p) { *(float2*)(p + 2 * i) = v; }
"""

PRELUDES = {
    "float": ["float_storage", "linear_activation", "epilogue_float"],
    "float32": ["float_storage", "linear_activation", "epilogue_float"],
    "qgemm": ["linear_activation", "rint_div", "epilogue_qgemm"],
    "fp8": ["float8", "rint_div", "linear_activation", "epilogue_fp8"],
}
# Build options of each family's output stage, as its launcher passes them; every launch fixes its
# activation, bias and residual mode (mma::fixed_epilogue_options): here Relu, a bias, and a
# residual added after the activation (ResNet's block ends), the largest of the common stages.
FIXED_EPILOGUE = {"KILN_ACT": "1", "KILN_EPI_BIAS": "1", "KILN_EPI_RES": "2"}
FAMILY_OPTIONS = {
    "float": {"KILN_HALF": "1", **FIXED_EPILOGUE},
    "float32": dict(FIXED_EPILOGUE),
    "qgemm": {"REQUANT": "1", "EPI": "1", "OUT_T": "char", "OUT_FLOAT": "0", "YZP_T": "char", "QLO": "-128",
              "QHI": "127", "RES_T": "char", "RES_Q": "1", "TA": "char", "TB": "char", "CONV": "0", **FIXED_EPILOGUE},
    "fp8": {"YK": "1", "BIAS_ROW": "1", "EPI": "1", "RK": "1", "AK": "1", "BK": "1", "CONV": "0", "KILN_PTX_FP8": "1", "KILN_FP8_SAT": "1",
            **FIXED_EPILOGUE},
}
# Work-group shapes (bm, bn, wm, wn) and pipelines (bytes of K per tile row, stages), as
# runtime/backends/opencl/mma_gemm.cpp offers them (kShapes, kPipelines, kLocalBytes).
TILES = [(128, 128, 2, 4), (128, 128, 2, 2), (128, 64, 4, 2), (64, 128, 2, 4), (64, 64, 2, 2)]
PIPELINES = [(64, 2), (32, 2), (64, 3), (32, 4)]
# The wgmma tiles (kWgShapes, kWgPipelines): built as the runtime builds them, PTX for sm_90 with
# the //@@ instructions then opened and assembled for sm_90a (runtime/device/ptx_sm90a.cpp).
WG_TILES = [(128, 128, 8, 1), (128, 192, 8, 1), (128, 256, 8, 1), (64, 128, 4, 1), (64, 256, 4, 1)]
WG_PIPELINES = [(64, 2), (32, 2), (64, 3), (32, 3), (32, 4)]
LOCAL_BYTES = 44 * 1024


def read(name):
    return open(os.path.join(ROOT, "kernels", name + ".cl")).read()


def source(family):
    return cuda_of([read("qgemm_geometry")] + [read(p) for p in PRELUDES[family]] + [read("mma_ops"), read("wgmma_ops"), read("mma_gemm")])


def cuda_of(parts):
    body = "\n".join(parts)
    body = body.replace("#pragma OPENCL FP_CONTRACT OFF", "")
    # Kernel-scope __local arrays are shared memory; __local elsewhere is an address space only.
    body = re.sub(r"^(\s*)__local (\w+ \w+\[)", r"\1__shared__ \2", body, flags=re.M)
    body = body.replace("(uint)(size_t)(smem + off)", "(uint)__cvta_generic_to_shared(smem + off)")
    # Plain (non-inline) helper functions are device functions too.
    body = re.sub(r"^((?:static )?(?:float|uchar|ushort|uint|int|void|bool) (?!mma_gemm\()\w+\()", r"__device__ \1", body, flags=re.M)
    return body


def local_bytes(elem, mode, t, kb, st, wg):
    es = {1: 2, 4: 4}.get(elem, 1)
    staging = t[2] * t[3] * 16 * 40 * 4  # the output staging rows (mma_gemm.cpp's staging_bytes)
    return max(st * (t[0] + t[1]) * kb, staging) + (2 * (kb // es) * 16 if mode == 3 else 0) + (1024 if wg else 0)


def wg_configs(quick):
    """(family, elem, a kind, b kind, B mode, A vectors, tile, pipeline, wgmma) of the wgmma tiles."""
    out = []
    for elem, kinds, family in [(1, [(0, 0)], "float"), (2, [(0, 0), (1, 0)], "qgemm"), (3, [(2, 2), (2, 3)], "fp8")]:
        modes = [0, 3] if elem == 1 else [0, 2, 3, 4]
        for (ak, bk) in kinds:
            for mode in modes:
                out.append((family, elem, ak, bk, mode, 1, WG_TILES[0], WG_PIPELINES[0], 1))
        # A tile's products in flight while the next is awaited (three or more stages).
        out.append((family, elem, kinds[0][0], kinds[0][1], 0, 1, WG_TILES[0], (32, 4), 1))
        out.append((family, elem, kinds[0][0], kinds[0][1], 0, 1, WG_TILES[1], (64, 2), 1))
        if not quick:
            for t in WG_TILES[1:]:
                for (kb, st) in WG_PIPELINES:
                    for mode in (0, 3):
                        if mode == 3 and (st != 2 or (t[2] * t[3] * 32) % t[1]):
                            continue
                        if local_bytes(elem, mode, t, kb, st, True) <= LOCAL_BYTES:
                            out.append((family, elem, kinds[0][0], kinds[0][1], mode, 1, t, (kb, st), 1))
    return out


def configs(quick):
    out = []
    for elem, kinds, family in [(1, [(0, 0)], "float"), (2, [(0, 0), (0, 1)], "qgemm"), (3, [(2, 2), (2, 3)], "fp8"),
                                (4, [(0, 0)], "float32")]:
        # As the runtime launches them: [k][n] vectors (1) are f16 only, pointwise (4) not TF32.
        modes = [0, 1, 2, 3, 4] if elem == 1 else [0, 2, 3, 4] if elem in (2, 3) else [0, 2, 3]
        for (ak, bk) in kinds:
            for mode in modes:
                for avec in (1, 0):
                    out.append((family, elem, ak, bk, mode, avec, TILES[0], PIPELINES[0]))
        # The deepest pipeline of the default tile, and (not --quick) every shape with every
        # pipeline that fits: pipelined (mode 0) and gathered (mode 3, two stages).
        out.append((family, elem, kinds[0][0], kinds[0][1], 0, 1, TILES[0], (32, 4)))
        if not quick:
            for t in TILES:
                for (kb, st) in PIPELINES:
                    for mode in (0, 3):
                        if (t, (kb, st)) == (TILES[0], PIPELINES[0]) or (mode == 3 and st != 2):
                            continue
                        es = {1: 2, 4: 4}.get(elem, 1)
                        if kb // es < {1: 16, 4: 8}.get(elem, 32):
                            continue
                        if local_bytes(elem, mode, t, kb, st, False) <= LOCAL_BYTES:
                            out.append((family, elem, kinds[0][0], kinds[0][1], mode, 1, t, (kb, st), 0))
    out = [c if len(c) == 9 else c + (0,) for c in out] + wg_configs(quick)
    # Channels-last convolutions (MMA_AMODE 1: A is x's implicit im2col by cp.async, B the weights
    # in mode 0), 8-bit: the default tile, the deepest pipeline, 128x64 and two wgmma tiles (the
    # 128x128 ones with the residual tile in __local); FP16: the default tile and a wgmma tile, and
    # 64x128 / 64x256 (wgmma) with a half residual tile in __local; FP8: the default and the wgmma
    # 128x128 tiles, with an FP8 residual tile.
    nhwc = [("qgemm", 2, ak, bk, 0, 1, TILES[0], PIPELINES[0], 0) for (ak, bk) in [(0, 0), (1, 0)]]
    nhwc += [("qgemm", 2, 0, 0, 0, 1, TILES[0], (32, 4), 0), ("qgemm", 2, 0, 0, 0, 1, (128, 64, 4, 2), (64, 3), 0),
             ("qgemm", 2, 0, 0, 0, 1, WG_TILES[0], WG_PIPELINES[0], 1), ("qgemm", 2, 0, 0, 0, 1, WG_TILES[1], (64, 2), 1),
             ("float", 1, 0, 0, 0, 1, TILES[0], PIPELINES[0], 0), ("float", 1, 0, 0, 0, 1, WG_TILES[0], WG_PIPELINES[0], 1),
             ("float", 1, 0, 0, 0, 1, TILES[3], PIPELINES[0], 0), ("float", 1, 0, 0, 0, 1, WG_TILES[4], WG_PIPELINES[0], 1),
             ("fp8", 3, 2, 2, 0, 1, TILES[0], PIPELINES[0], 0), ("fp8", 3, 2, 2, 0, 1, WG_TILES[0], WG_PIPELINES[0], 1)]
    return [c + (0,) for c in out] + [c + (1,) for c in nhwc]


def split_configs():
    """Split-K (MMA_SPLITK) as configs() lists them: a wgmma tile of each family (channels-last
    FP16 too) and an mma.sync tile over a gathered convolution."""
    return [("qgemm", 2, 0, 0, 0, 1, WG_TILES[0], WG_PIPELINES[0], 1, 0),
            ("fp8", 3, 2, 2, 0, 1, WG_TILES[1], (64, 2), 1, 0),
            ("float", 1, 0, 0, 0, 1, WG_TILES[0], WG_PIPELINES[0], 1, 1),
            ("float", 1, 0, 0, 3, 1, TILES[0], PIPELINES[0], 0, 0)]


# Branch regions (BSSY) an 8-bit output stage may hold after the last tensor-core instruction:
# the stage is branch-free per element (kernels/rint_div.cl's kiln_div, one-instruction FP8
# conversions, full row groups stored without a test), leaving a few per unrolled pass (a
# group's store test). Branches per element had kept its loads from overlapping: 130-174 regions
# then, FP8's residual layers at half INT8's speed (perf/results/2026-12-07-outstage.md).
MAX_STAGE_BRANCH_REGIONS = 16


def stage_branch_regions(cuobjdump, cubin):
    """BSSY instructions after the kernel's last tensor-core instruction (its output stage)."""
    sass = subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True).stdout.splitlines()
    last = max((i for i, l in enumerate(sass) if re.search(r"\b[HIQ]G?MMA", l)), default=None)
    return None if last is None else sum(1 for l in sass[last + 1:] if re.search(r"\bBSSY\b", l))


def report(name, cu, p, cuobjdump=None):
    """Prints one configuration's outcome from its ptxas -v log; 1 when it failed. With cuobjdump,
    an 8-bit family's output stage must also stay within MAX_STAGE_BRANCH_REGIONS."""
    if p.returncode:
        print(f"FAIL {name}\n{p.stderr[-3000:]}")
        return 1
    regions = None
    if cuobjdump and name.startswith(("qgemm", "fp8")) and os.path.exists(cu + ".cubin"):
        regions = stage_branch_regions(cuobjdump, cu + ".cubin")
        if regions is not None and regions > MAX_STAGE_BRANCH_REGIONS:
            print(f"FAIL {name}: {regions} branch regions in the output stage (at most {MAX_STAGE_BRANCH_REGIONS})")
            return 1
    regs = re.search(r"Used (\d+) registers", p.stderr)
    smem = re.search(r"(\d+) bytes smem", p.stderr)
    spill = re.search(r"(\d+) bytes spill stores", p.stderr)
    serialized = " (wgmma SERIALIZED)" if "serialized" in p.stderr else ""
    code = os.path.getsize(cu + ".cubin") // 1024 if os.path.exists(cu + ".cubin") else "?"
    branches = f", {regions} branch regions in the output stage" if regions is not None else ""
    print(f"ok   {name}{serialized}: {regs.group(1) if regs else '?'} registers, {smem.group(1) if smem else '?'} bytes smem, "
          f"{spill.group(1) if spill else '?'} bytes spill stores, {code} KB cubin{branches}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nvcc", default=shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc")
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.nvcc):
        print("check_mma_ptx: no nvcc (the CUDA toolkit); skipped")
        return 77
    # cuobjdump (the toolkit's, or PyPI's nvidia-cuda-cuobjdump) counts the output stages' branches.
    cuobjdump = shutil.which("cuobjdump") or shutil.which(os.path.join(os.path.dirname(a.nvcc), "cuobjdump"))
    work = tempfile.mkdtemp(prefix="kiln-ptx-")
    failed = 0
    for split, (family, elem, ak, bk, mode, avec, (bm, bn, wm, wn), (kb, st), wg, amode) in (
            [(0, c) for c in configs(a.quick)] + [(1, c) for c in split_configs()]):
        es = {1: 2, 4: 4}.get(elem, 1)
        defs = {"MMA_ELEM": elem, "MMA_A_KIND": ak, "MMA_B_KIND": bk, "MMA_BM": bm, "MMA_BN": bn, "MMA_BK": kb // es,
                "MMA_WM": wm, "MMA_WN": wn, "MMA_BMODE": mode, "MMA_AVEC": avec, "MMA_STAGES": st,
                "MMA_PENDING": st - 2 - int(wg and st >= 3 and mode == 0 and avec == 1), "MMA_B4": int(mode == 2 and elem in (2, 3)), "KILN_PTX": 1,
                "MMA_WGMMA": wg, "MMA_AMODE": amode}
        # Channels-last 128x128 tiles: the residual tile copied into __local (mma_gemm.cpp's
        # residual_tile_bytes: where it fits beside the staging rows).
        if amode and (bm, bn) == (128, 128) and family != "float":
            defs["MMA_RES_TILE"] = 1
        # FP16 channels-last tiles with room for a half residual tile beside 8 (4) warps' staging rows.
        if amode and family == "float" and (bm, bn) in ((64, 128), (64, 256)):
            defs["MMA_RES_TILE"] = 2
        # Matmul-shaped float outputs on warps of 64+ columns store column pairs (mma_gemm.cpp's
        # output_columns_per_lane, where N and the rows are even).
        if family in ("float", "float32") and mode in (0, 1, 2) and (bn // wn) % 64 == 0 and "MMA_RES_TILE" not in defs:
            defs["MMA_EPI_VEC"] = 2
        if split:
            defs["MMA_SPLITK"] = 1
        defs.update(FAMILY_OPTIONS[family])
        name = f"{family}_e{elem}_k{ak}{bk}_b{mode}_a{avec}{'_nhwc' if amode else ''}_{bm}x{bn}_w{wm}x{wn}_k{kb}s{st}" + (
            "_wg" if wg else "") + ("_splitk" if split else "")
        cu = os.path.join(work, name + ".cu")
        with open(cu, "w") as f:
            f.write("".join(f"#define {k} {v}\n" for k, v in defs.items()) + SHIM + source(family))
        if wg:
            p = subprocess.run([a.nvcc, "-arch=sm_90", "-ptx", "-o", cu + ".ptx", cu], capture_output=True, text=True)
            if not p.returncode:
                ptx = open(cu + ".ptx").read()
                opened = ptx.replace(".target sm_90", ".target sm_90a", 1).replace("//@@", "")
                if bm == 128 and bn <= 192:  # mma_gemm.cpp's wg_max_registers
                    body = opened.index("\n{", opened.index(".entry"))
                    opened = opened[:body] + "\n.maxnreg 128" + opened[body:]
                open(cu + ".a.ptx", "w").write(opened)
                ptxas = os.path.join(os.path.dirname(a.nvcc), "ptxas")
                p = subprocess.run([ptxas, "-arch=sm_90a", "-v", "-o", cu + ".cubin", cu + ".a.ptx"],
                                   capture_output=True, text=True)
        else:
            p = subprocess.run([a.nvcc, "-arch=" + a.arch, "-cubin", "-o", cu + ".cubin", "-Xptxas", "-v", cu],
                               capture_output=True, text=True)
        failed += report(name, cu, p, cuobjdump)
    # The tensor-core attention (kernels/attention_mma.cl, runtime/backends/opencl/attention.cpp's
    # options): head dims 64 (two stages of K and V) and 128 (one), K as [key][d] and transposed,
    # no mask / one mask row for every query row (with half scores) / a mask row per query row.
    attention = [(d, kt, m) for d in (64, 128) for kt in (0, 1) for m in (0, 1, 2)]
    for d, kt, m in attention:
        stages = 2 if d <= 64 else 1
        defs = {"FA_D": d, "FA_BK": 64, "FA_KT": kt, "FA_VEC_Q": 1, "FA_VEC_K": 1, "FA_VEC_V": 1, "FA_VEC_Y": 1,
                "FA_STAGES": stages, "KILN_PTX": 1, "MMA_A_KIND": 0, "MMA_B_KIND": 0, "MMA_PENDING": stages - 1,
                "FA_MASK": int(m > 0), "FA_MASK_ROWS": int(m == 2), "FA_HALF_SCORES": int(m == 1)}
        name = f"attention_d{d}_kt{kt}_mask{m}"
        cu = os.path.join(work, name + ".cu")
        with open(cu, "w") as f:
            f.write("".join(f"#define {k} {v}\n" for k, v in defs.items()) + SHIM + cuda_of([read("mma_ops"), read("warp_shuffle"), read("attention_mma")]))
        p = subprocess.run([a.nvcc, "-arch=" + a.arch, "-cubin", "-o", cu + ".cubin", "-Xptxas", "-v", cu],
                           capture_output=True, text=True)
        failed += report(name, cu, p)
    if os.environ.get("KEEP_PTX"):  # to read the PTX afterwards
        print("kept", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"check_mma_ptx: {failed} of {len(configs(a.quick)) + len(split_configs()) + len(attention)} configurations failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
