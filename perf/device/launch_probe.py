#!/usr/bin/env python3
"""What one kernel launch costs a kiln plan on this OpenCL device: chains of N LayerNormalization
nodes on a [1, 128, 768] tensor (nothing fuses them: one launch each) built and timed by
`kiln bench`; the slope of the median latency over N is the cost per launch of a replayed plan,
and bench's host time issuing each launch is what of it the host spends. Each chain runs on the
default queue and with KILN_PROFILING_QUEUE=1 (a queue that records timestamps, as every queue
did before 2026-12-07). Also prints whether the device offers cl_khr_command_buffer (one enqueue
for a whole recording).
Usage: launch_probe.py OUTDIR [--kiln kiln]"""
import argparse
import ctypes
import json
import os
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def extensions():
    try:
        cl = ctypes.CDLL("libOpenCL.so.1")
    except OSError as e:
        return f"no libOpenCL: {e}"
    plat = (ctypes.c_void_p * 8)()
    n = ctypes.c_uint()
    cl.clGetPlatformIDs(8, plat, ctypes.byref(n))
    out = []
    for i in range(n.value):
        dev = (ctypes.c_void_p * 8)()
        nd = ctypes.c_uint()
        if cl.clGetDeviceIDs(ctypes.c_void_p(plat[i]), ctypes.c_ulong(0xFFFFFFFF), 8, dev, ctypes.byref(nd)) != 0:
            continue
        for j in range(nd.value):
            buf = ctypes.create_string_buffer(1 << 16)
            cl.clGetDeviceInfo(ctypes.c_void_p(dev[j]), ctypes.c_uint(0x1030), ctypes.c_size_t(1 << 16), buf, None)
            out.append(buf.value.decode())
    return out


def chain(path, n):
    nodes, inits = [], [numpy_helper.from_array(np.ones(768, np.float32), "g"),
                        numpy_helper.from_array(np.zeros(768, np.float32), "b")]
    prev = "x"
    for i in range(n):
        nodes.append(helper.make_node("LayerNormalization", [prev, "g", "b"], [f"y{i}"], axis=-1))
        prev = f"y{i}"
    g = helper.make_graph(nodes, "ln_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128, 768])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 128, 768])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--kiln", default="kiln")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    res = {"command_buffer": [("cl_khr_command_buffer" in e) for e in extensions()], "chains": []}
    np.save(os.path.join(a.out, "x.npy"), np.random.default_rng(0).standard_normal((1, 128, 768)).astype(np.float32))
    for n in (25, 100, 200):
        for prec in ("fp32", "fp16"):
            m, p, j = (os.path.join(a.out, f"ln{n}.{ext}") for ext in ("onnx", f"{prec}.plan", f"{prec}.json"))
            chain(m, n)
            b = subprocess.run([a.kiln, "build", m, "-o", p, "--precision", prec], capture_output=True, text=True)
            if b.returncode:
                res["chains"].append({"n": n, "precision": prec, "error": b.stderr.strip()[-300:]})
                continue
            for queue in ("plain", "profiling"):
                env = dict(os.environ, KILN_PROFILING_QUEUE="1" if queue == "profiling" else "0")
                r = subprocess.run([a.kiln, "bench", p, "-i", "x=" + os.path.join(a.out, "x.npy"), "--duration-s", "1",
                                    "--json", j, "--no-data-transfers"], capture_output=True, text=True, env=env)
                row = {"n": n, "precision": prec, "queue": queue, "rc": r.returncode,
                       "tail": (r.stdout + r.stderr).strip()[-300:]}
                if os.path.exists(j):
                    row["bench"] = json.load(open(j))
                    os.remove(j)
                res["chains"].append(row)
                b = row.get("bench", {})
                print(n, prec, queue, "median ms", b.get("latency_ms", {}).get("median"), "issue us/launch",
                      b.get("issue_us_per_launch"), flush=True)
    json.dump(res, open(os.path.join(a.out, "launch_probe.json"), "w"), indent=1)
    print("cl_khr_command_buffer:", res["command_buffer"])


if __name__ == "__main__":
    main()
