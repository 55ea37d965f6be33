"""kiln.build from a path, bytes and an onnx.ModelProto; plans run against onnxruntime on the
committed models; save/load, inputs/outputs, inspect; dynamic-shape plans; INT8 calibration
from an iterable; compare and sweep as data; python -m kiln is the CLI."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest

import kiln
from conftest import DEVICE, model, ort_session, random_feeds

RUNNABLE = ["demo_cnn.onnx", "fashion_cnn.onnx", "copy_two_inputs.onnx", "dynamic_batch.onnx"]


def test_installed_package_is_used():
    # The wheel in the test venv, not the source tree.
    assert "site-packages" in kiln.__file__, kiln.__file__
    assert kiln.__version__


def test_devices_lists_cpu_and_opencl():
    names = [d["name"] for d in kiln.devices()]
    assert names[0] == "cpu"
    if DEVICE == "opencl":
        assert "opencl:0" in names


@pytest.mark.parametrize("name", RUNNABLE)
def test_committed_models_match_onnxruntime(name):
    path = model(name)
    shapes = {"fashion_cnn.onnx": {"input": (2, 1, 28, 28)}, "dynamic_batch.onnx": {"x": "3x3x4"}}.get(name)
    plan = kiln.build(path, device=DEVICE, shapes=shapes)
    feeds = random_feeds(plan, seed=1)
    got = plan.context(DEVICE).run(feeds)
    want = ort_session(path).run(None, feeds)
    assert [o["name"] for o in plan.outputs] == list(got)
    for w, (n, g) in zip(want, got.items()):
        assert g.dtype == w.dtype and g.shape == w.shape, n
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=n)


def test_build_from_path_bytes_and_modelproto_agree():
    onnx = pytest.importorskip("onnx")
    path = model("demo_cnn.onnx")
    with open(path, "rb") as f:
        data = f.read()
    plans = [kiln.build(path, device=DEVICE), kiln.build(data, device=DEVICE),
             kiln.build(onnx.load(path), device=DEVICE)]
    feeds = random_feeds(plans[0], seed=2)
    outs = [p.context(DEVICE).run(feeds)["probs"] for p in plans]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_plan_metadata_save_load_inspect(tmp_path):
    plan = kiln.build(model("copy_two_inputs.onnx"), device=DEVICE)
    assert plan.inputs == [
        {"name": "x", "dtype": "float32", "shape": [2, 3, 4], "min_shape": [2, 3, 4], "max_shape": [2, 3, 4]},
        {"name": "ids", "dtype": "int64", "shape": [5], "min_shape": [5], "max_shape": [5]}]
    assert [o["name"] for o in plan.outputs] == ["y", "ids_out"]
    path = tmp_path / "p.plan"
    plan.save(path)
    again = kiln.load(path)
    assert again.bytes == plan.bytes == path.read_bytes()
    info = plan.inspect()
    assert info["inputs"][0]["name"] == "x" and info["nodes"], info
    assert all({"name", "op", "backend", "precision"} <= set(n) for n in info["nodes"])
    # The CLI reads the same plan file.
    out = subprocess.run([sys.executable, "-m", "kiln", "inspect", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and "nodes (%d)" % len(info["nodes"]) in out.stdout, out.stdout + out.stderr


def test_dynamic_plan_runs_shapes_in_range():
    path = model("dynamic_batch.onnx")
    plan = kiln.build(path, device=DEVICE, min_shapes={"x": (1, 3, 4)}, max_shapes={"x": "8x3x4"})
    assert plan.inputs[0]["min_shape"] == [1, 3, 4] and plan.inputs[0]["max_shape"] == [8, 3, 4]
    ctx = plan.context(DEVICE)
    sess = ort_session(path)
    for n in (1, 5, 8, 3):
        x = np.random.default_rng(n).standard_normal((n, 3, 4)).astype(np.float32)
        got = ctx.run({"x": x})["y"]
        np.testing.assert_allclose(got, sess.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(kiln.Error, match="range|9"):
        ctx.run({"x": np.zeros((9, 3, 4), np.float32)})


def calib_samples(n=8, seed=3):
    r = np.random.default_rng(seed)
    return [{"input": r.uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)} for _ in range(n)]


def test_int8_calibration_from_an_iterable(tmp_path):
    path = model("demo_cnn.onnx")
    lines = []
    plan = kiln.build(path, device=DEVICE, precision="int8", calib=iter(calib_samples()),
                      log=lambda level, line: lines.append((level, line)))
    assert any("calibrat" in line for _, line in lines), lines
    # The layer check measures the quantized layers on the iterable's samples too.
    assert any(line.startswith("layer check: ") and "within line" in line for _, line in lines), lines
    # ... and so does the default output budget; accuracy_check=False skips both.
    assert any(line.startswith("accuracy check: relative L2 error <= 0.1") for _, line in lines), lines
    lines.clear()
    kiln.build(path, device=DEVICE, precision="int8", calib=iter(calib_samples()), accuracy_check=False,
               log=lambda level, line: lines.append((level, line)))
    assert ("info", "layer check: skipped (--no-accuracy-check)") in lines, lines
    assert not any(line.startswith("accuracy check") for _, line in lines), lines
    # The same samples from a folder give the same plan (calibration is deterministic).
    d = tmp_path / "calib"
    d.mkdir()
    for i, s in enumerate(calib_samples()):
        np.savez(d / ("%02d.npz" % i), **s)
    assert kiln.build(path, device=DEVICE, precision="int8", calib_dir=str(d)).bytes == plan.bytes
    precisions = {n["precision"] for n in plan.inspect()["nodes"]}
    assert any("int8" in p for p in precisions), precisions
    x = calib_samples(1, seed=9)[0]
    got = plan.context(DEVICE).run(x)["probs"]
    want = ort_session(path).run(None, x)[0]
    # INT8 against FP32 onnxruntime: close, and the same class.
    assert np.abs(got - want).max() < 0.1 and got.argmax() == want.argmax(), (got, want)


def test_int8_fallback_precision_fp16():
    # demo_cnn's Softmax is left in float by INT8 quantization: fallback_precision="fp16" runs it
    # in FP16 (the plan's outputs stay as close to onnxruntime's FP32 as the plain INT8 plan's);
    # a precision other than fp32/fp16 is a one-line error naming it.
    path = model("demo_cnn.onnx")
    plans = {fb: kiln.build(path, device=DEVICE, precision="int8", calib=calib_samples(), fallback_precision=fb)
             for fb in ("fp32", "fp16")}
    for fb, plan in plans.items():
        softmax = [n for n in plan.inspect()["nodes"] if n["op"] == "Softmax"]
        assert [n["precision"] for n in softmax] == [fb], softmax
    x = calib_samples(1, seed=9)[0]
    want = ort_session(path).run(None, x)[0]
    for fb, plan in plans.items():
        got = plan.context(DEVICE).run(x)["probs"]
        assert np.abs(got - want).max() < 0.1 and got.argmax() == want.argmax(), (fb, got, want)
    with pytest.raises(kiln.Error, match="fallback precision must be fp32 or fp16, got int8") as e:
        kiln.build(path, device=DEVICE, precision="int8", calib=calib_samples(), fallback_precision="int8")
    assert "\n" not in str(e.value)


def test_io_precision_fp16():
    # io_precision="fp16": the plan's input and output are float16 (plan.inputs/outputs), it runs
    # on float16 arrays and gives float16 probabilities within half's rounding of onnxruntime's
    # FP32; a precision other than fp32/fp16 is a one-line error naming it.
    path = model("demo_cnn.onnx")
    plan = kiln.build(path, device=DEVICE, io_precision="fp16")
    assert [i["dtype"] for i in plan.inputs] == ["float16"] and [o["dtype"] for o in plan.outputs] == ["float16"]
    x = calib_samples(1, seed=9)[0]
    got = plan.context(DEVICE).run({k: v.astype(np.float16) for k, v in x.items()})["probs"]
    assert got.dtype == np.float16
    want = ort_session(path).run(None, x)[0]
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=5e-3, atol=2e-3)
    with pytest.raises(kiln.Error, match="must be fp32 or fp16, got int8") as e:
        kiln.build(path, device=DEVICE, io_precision="int8")
    assert "\n" not in str(e.value)


def test_int8_mse_calibrator(tmp_path):
    path = model("demo_cnn.onnx")
    cache = tmp_path / "ranges.cache"
    plan = kiln.build(path, device=DEVICE, precision="int8", calib=calib_samples(), calibrator="mse",
                      calib_cache=str(cache))
    assert "calibrator mse" in cache.read_text().splitlines()[:2], cache.read_text()[:80]
    x = calib_samples(1, seed=9)[0]
    got = plan.context(DEVICE).run(x)["probs"]
    want = ort_session(path).run(None, x)[0]
    assert np.abs(got - want).max() < 0.1 and got.argmax() == want.argmax(), (got, want)
    # bias_correction=False (--no-bias-correction): the build says nothing of it, and the same
    # ranges give another plan (the corrected biases differ).
    lines = []
    plain = kiln.build(path, device=DEVICE, precision="int8", calibrator="mse", calib_cache=str(cache),
                       bias_correction=False,
                       log=lambda level, line: lines.append(line))
    assert not any("bias correction" in line for line in lines), lines
    again = kiln.build(path, device=DEVICE, precision="int8", calibrator="mse", calib_cache=str(cache))
    assert again.bytes == plan.bytes and plain.bytes != plan.bytes


@pytest.mark.skipif(DEVICE != "opencl", reason="kernel variants and TF32 are OpenCL's")
def test_tune_tuning_cache_and_allow_tf32(tmp_path):
    path = model("fashion_cnn.onnx")
    shapes = {"input": (2, 1, 28, 28)}
    lines = []
    cache = tmp_path / "t.cache"
    tuned = kiln.build(path, device="opencl", shapes=shapes, tune=True, tuning_cache=str(cache),
                       log=lambda level, line: lines.append(line))
    assert any(line.startswith("tune: ") and "portable" in line for line in lines), lines
    assert cache.read_text().splitlines()[0] == "kiln tuning cache 1"
    before = cache.read_bytes()
    kiln.build(path, device="opencl", shapes=shapes, tune=True, tuning_cache=cache)  # a PathLike too
    assert cache.read_bytes() == before  # every timing reused, nothing rewritten
    with pytest.raises(kiln.Error, match="tuning"):
        kiln.build(path, device="opencl", shapes=shapes, tuning_cache=str(cache))
    # FP32 Conv/Gemm/MatMul carry the TF32 permission only when it is given (PoCL has no tensor
    # cores, so the kernels stay the same and the results stay FP32's).
    plain = kiln.build(path, device="opencl", shapes=shapes)
    tf32 = kiln.build(path, device="opencl", shapes=shapes, allow_tf32=True)

    def linear_attrs(p):
        return [n["attributes"] for n in p.inspect()["nodes"] if n["op"] in ("Conv", "Gemm", "MatMul")]
    assert linear_attrs(tf32) and all("allow_tf32=1" in a for a in linear_attrs(tf32)), linear_attrs(tf32)
    assert not any("allow_tf32" in a for a in linear_attrs(plain)), linear_attrs(plain)
    feeds = random_feeds(plain, seed=4, shapes=shapes)
    want = ort_session(path).run(None, feeds)[0]
    for p in (tuned, tf32):
        got = list(p.context("opencl").run(feeds).values())[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_compare_returns_data_that_matches_numpy():
    path = model("demo_cnn.onnx")
    plan = kiln.build(path, device=DEVICE, precision="int8", calib=calib_samples())
    x = calib_samples(1, seed=11)[0]
    c = kiln.compare(plan, path, x, device=DEVICE, per_layer=True)
    row = c["outputs"][0]
    got = plan.context(DEVICE).run(x)["probs"].astype(np.float64)
    want = ort_session(path).run(None, x)[0].astype(np.float64)
    assert row["tensor"] == "probs"
    assert abs(row["max_abs"] - np.abs(got - want).max()) < 1e-6
    assert abs(row["rel_l2"] - np.linalg.norm(got - want) / np.linalg.norm(want)) < 1e-5
    layers = c["layers"]
    assert layers and [r["rel_l2"] for r in layers] == sorted((r["rel_l2"] for r in layers), reverse=True)
    assert set(c["plan_values"]) == {r["tensor"] for r in layers}


def test_sweep_returns_rows():
    r = kiln.sweep(model("demo_cnn.onnx"), calib=calib_samples(4), device=DEVICE, precisions=["fp32", "int8"],
                   seconds=0.05, labels=[0, 1, 2, 3])
    assert r["samples"] == 4 and [x["precision"] for x in r["rows"]] == ["fp32", "int8"]
    fp32, int8 = r["rows"]
    assert fp32["available"] and fp32["max_rel_l2"] < 1e-5 and fp32["latency_ms"] > 0
    # demo_cnn's weights are 3.7 KB: the int8 plan's smaller weights are offset by its extra
    # scale/zero-point tensors and nodes, so its file is no larger, not necessarily smaller.
    assert int8["available"] and int8["plan_bytes"] <= fp32["plan_bytes"] and 0 < int8["max_rel_l2"] < 0.1
    assert fp32["top1_rows"] == 4


def test_profile_records_every_node():
    plan = kiln.build(model("demo_cnn.onnx"), device=DEVICE)
    recs = plan.context(DEVICE).profile(random_feeds(plan), runs=3)
    nodes = [r for r in recs if r["kind"] == "node"]
    assert len(nodes) == 3 * len(plan.inspect()["nodes"])
    assert {r["run"] for r in nodes} == {0, 1, 2}
    assert all(r["end_ns"] >= r["start_ns"] for r in recs)
    assert any(r["flops"] > 0 for r in nodes)


def test_python_m_kiln_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "kiln", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: kiln" in out.stdout and "build" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-m", "kiln", "build", "--help"], capture_output=True, text=True)
    assert "--precision" in out.stdout
