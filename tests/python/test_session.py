"""kiln.InferenceSession against onnxruntime.InferenceSession on the same models: the same
surface (get_inputs, get_outputs, run, run_async), the same answers; plans cached on disk."""
import os
import threading

import numpy as np
import pytest

import kiln
from conftest import DEVICE, model, ort_session

PROVIDERS = [("KilnExecutionProvider", {"device": DEVICE})]


@pytest.fixture(autouse=True)
def plan_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "plans"


def test_same_surface_and_answers_as_onnxruntime():
    path = model("copy_two_inputs.onnx")
    ref = ort_session(path)
    s = kiln.InferenceSession(path, providers=PROVIDERS)
    assert [(i.name, i.type, i.shape) for i in s.get_inputs()] == [(i.name, i.type, i.shape) for i in ref.get_inputs()]
    assert [(o.name, o.type) for o in s.get_outputs()] == [(o.name, o.type) for o in ref.get_outputs()]
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32),
             "ids": np.array([4, 0, 2, 1, 3], np.int64)}
    for names in (None, ["ids_out"], ["ids_out", "y"]):
        got, want = s.run(names, feeds), ref.run(names, feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    with pytest.raises(kiln.Error, match="no output named"):
        s.run(["nope"], feeds)


def test_cnn_and_cache(plan_cache):
    path = model("demo_cnn.onnx")
    ref = ort_session(path)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    s = kiln.InferenceSession(path, providers=PROVIDERS)
    np.testing.assert_allclose(s.run(None, {"input": x})[0], ref.run(None, {"input": x})[0], rtol=1e-4, atol=1e-6)
    cached = list(plan_cache.glob("*.plan"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    # Same model, options and device: the cached plan, not a new build.
    s2 = kiln.InferenceSession(open(path, "rb").read(), providers=PROVIDERS)
    np.testing.assert_array_equal(s2.run(None, {"input": x})[0], s.run(None, {"input": x})[0])
    assert list(plan_cache.glob("*.plan")) == cached and cached[0].stat().st_mtime_ns == mtime
    # Other options: another plan.
    kiln.InferenceSession(path, providers=[("KilnExecutionProvider", {"device": DEVICE, "precision": "fp16"})])
    assert len(list(plan_cache.glob("*.plan"))) == 2


def test_dynamic_model_builds_per_input_shape():
    path = model("dynamic_batch.onnx")
    ref = ort_session(path)
    s = kiln.InferenceSession(path, providers=PROVIDERS)
    with pytest.raises(kiln.Error, match="dynamic"):
        s.get_inputs()
    for n in (1, 3, 1):
        x = np.random.default_rng(n).standard_normal((n, 3, 4)).astype(np.float32)
        np.testing.assert_allclose(s.run(None, {"x": x})[0], ref.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)
    ranged = kiln.InferenceSession(path, providers=[("KilnExecutionProvider", {
        "device": DEVICE, "min_shapes": {"x": (1, 3, 4)}, "max_shapes": {"x": (6, 3, 4)}})])
    x = np.ones((5, 3, 4), np.float32)
    np.testing.assert_allclose(ranged.run(None, {"x": x})[0], ref.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_run_async_callback():
    path = model("demo_cnn.onnx")
    s = kiln.InferenceSession(path, providers=PROVIDERS)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    want = s.run(None, {"input": x})[0]
    done = threading.Event()
    result = {}

    def cb(outputs, user_data, err):
        result.update(outputs=outputs, user=user_data, err=err)
        done.set()
    s.run_async(None, {"input": x}, cb, "tag")
    assert done.wait(60)
    assert result["err"] == "" and result["user"] == "tag"
    np.testing.assert_array_equal(result["outputs"][0], want)


def test_onnxruntime_options_honoured_and_refused(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = model("demo_cnn.onnx")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    s = kiln.InferenceSession(path, so, providers=PROVIDERS)
    x = np.zeros((1, 3, 32, 32), np.float32)
    s.run(None, {"input": x})
    trace = s.end_profiling()
    assert os.path.exists(trace) and os.path.getsize(trace) > 10
    # ORT_DISABLE_ALL: no fusion (more nodes than the fused plan).
    assert len(s._static.inspect()["nodes"]) > len(kiln.build(path, device=DEVICE).inspect()["nodes"])
    so2 = ort.SessionOptions()
    so2.optimized_model_filepath = str(tmp_path / "opt.onnx")
    with pytest.raises(kiln.Error, match="optimized_model_filepath"):
        kiln.InferenceSession(path, so2, providers=PROVIDERS)
    with pytest.raises(kiln.Error, match="provider"):
        kiln.InferenceSession(path, providers=["NoSuchExecutionProvider"])
    with pytest.raises(kiln.Error, match="unknown option"):
        kiln.InferenceSession(path, providers=[("KilnExecutionProvider", {"speed": "max"})])
    cpu = kiln.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert cpu.get_provider_options()["KilnExecutionProvider"]["device"] == "cpu"
