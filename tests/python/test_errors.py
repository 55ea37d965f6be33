"""Bad arguments are kiln.Error with kiln's one-line message, never a crash; the context stays
usable after each."""
import os

import numpy as np
import pytest

import kiln
from conftest import DEVICE, model, random_feeds


@pytest.fixture(scope="module")
def plan():
    return kiln.build(model("copy_two_inputs.onnx"), device=DEVICE)


def good(plan):
    return random_feeds(plan)


def test_run_errors_name_the_problem(plan):
    ctx = plan.context(DEVICE)
    x, ids = good(plan)["x"], good(plan)["ids"]
    cases = [
        ({"x": x, "ids": ids, "nope": x}, "nope"),
        ({"x": x}, "ids"),
        ({"x": x.astype(np.float64), "ids": ids}, "float"),
        ({"x": x[:1], "ids": ids}, "2x3x4"),
        ({"x": x.reshape(6, 4), "ids": ids}, "2x3x4"),
        ({"x": "text", "ids": ids}, None),
        ({"x": np.zeros((2, 3, 4), dtype=object), "ids": ids}, None),
        ({1: x, "ids": ids}, None),
    ]
    for feeds, pattern in cases:
        with pytest.raises(kiln.Error, match=pattern):
            ctx.run(feeds)
    with pytest.raises(kiln.Error):
        ctx.run([x, ids])
    with pytest.raises(kiln.Error, match="no output named"):
        ctx.run(good(plan), output_names=["zzz"])
    # Still usable, and non-contiguous inputs are fine (copied).
    out = ctx.run({"x": np.asfortranarray(x), "ids": ids})
    np.testing.assert_array_equal(out["ids_out"], ids)


def test_messages_are_one_line(plan):
    ctx = plan.context(DEVICE)
    try:
        ctx.run({"x": np.zeros((2, 3, 5), np.float32), "ids": good(plan)["ids"]})
    except kiln.Error as e:
        assert "\n" not in str(e) and "x" in str(e)
    else:
        raise AssertionError("accepted a wrong shape")


def test_build_errors(tmp_path):
    bad = [
        (lambda: kiln.build(str(tmp_path / "missing.onnx")), "missing.onnx"),
        (lambda: kiln.build(b"not a model"), None),
        (lambda: kiln.build(b""), "empty"),
        (lambda: kiln.build(12), "path, bytes"),
        (lambda: kiln.build(model("demo_cnn.onnx"), device="nonsense"), "nonsense"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="fp7"), "fp7"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="int8"), "calib"),
        (lambda: kiln.build(model("demo_cnn.onnx"), shapes={"nope": (1, 2)}), "nope"),
        (lambda: kiln.build(model("demo_cnn.onnx"), shapes={"input": "1xax3"}), "dims"),
        (lambda: kiln.build(model("demo_cnn.onnx"), shapes={"input": (1, -3, 32, 32)}), "negative"),
        (lambda: kiln.build(model("dynamic_batch.onnx"), min_shapes={"x": (1, 3, 4)}), "same inputs"),
        (lambda: kiln.build(model("dynamic_batch.onnx"), min_shapes={"x": (4, 3, 4)}, max_shapes={"x": (2, 3, 4)}),
         "min"),
        (lambda: kiln.build(model("demo_cnn.onnx"), layer_precision={"conv1": "best"}), "best"),
        (lambda: kiln.build(model("demo_cnn.onnx"), accuracy_budget=-1), "accuracy budget"),
        (lambda: kiln.build(model("demo_cnn.onnx"), smooth_quant=3), "alpha"),
        (lambda: kiln.build(model("demo_cnn.onnx"), calibrator="magic"), "magic"),
        (lambda: kiln.build(model("demo_cnn.onnx"), partition="random"), "partition"),
        (lambda: kiln.build(model("demo_cnn.onnx"), transfer_gbps="fast"), "number"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="int8", calib=[{"input": np.zeros((1, 3, 32, 32))}]),
         "float"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="int8", calib=[{"wrong": np.zeros(3, np.float32)}]),
         "wrong"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="int8", calib=[]), "no samples"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="int8", calib=[1, 2]), "sample #0"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="int8", calib={"input": 1}), "iterable"),
        (lambda: kiln.build(model("demo_cnn.onnx"), precision="int8",
                            calib=[{"input": np.full((1, 3, 32, 32), np.nan, np.float32)}]), "NaN"),
        (lambda: kiln.build(model("custom_domain.onnx")), None),
        (lambda: kiln.build(model("hardmax.onnx")), "Hardmax"),
        (lambda: kiln.build(model("demo_cnn.onnx"), freeze={"input": np.zeros(3, np.float64)}), "freeze|input"),
        (lambda: kiln.load(str(tmp_path / "none.plan")), "none.plan"),
        (lambda: kiln.load(42), None),
        (lambda: kiln.Plan(b"KILN garbage"), None),
        (lambda: kiln.compare("x", model("demo_cnn.onnx")), "kiln.Plan"),
        (lambda: kiln.sweep(model("demo_cnn.onnx")), "calib"),
    ]
    for fn, pattern in bad:
        with pytest.raises(kiln.Error, match=pattern) as e:
            fn()
        assert "\n" not in str(e.value), str(e.value)


def test_exception_in_calibration_iterable_propagates():
    def samples():
        yield {"input": np.zeros((1, 3, 32, 32), np.float32)}
        raise ValueError("my data loader broke")
    with pytest.raises(ValueError, match="my data loader broke"):
        kiln.build(model("demo_cnn.onnx"), precision="int8", calib=samples())


def test_truncated_and_corrupted_plans(plan):
    data = plan.bytes
    for cut in (0, 8, 64, len(data) // 2, len(data) - 1):
        with pytest.raises(kiln.Error):
            kiln.Plan(data[:cut])
    for pos in range(16, len(data), max(1, len(data) // 20)):
        flipped = bytearray(data)
        flipped[pos] ^= 0xFF
        with pytest.raises(kiln.Error):
            kiln.Plan(bytes(flipped))


def test_context_errors(plan):
    with pytest.raises(kiln.Error):
        plan.context("opencl:99")
    with pytest.raises(kiln.Error):
        plan.context(DEVICE, cpu_threads=-1)
    with pytest.raises(kiln.Error):
        plan.context(DEVICE, cpu_threads="many")
    ctx = plan.context(DEVICE)
    ctx.close()
    ctx.close()
    with pytest.raises(kiln.Error, match="closed"):
        ctx.run(good(plan))
    with pytest.raises(kiln.Error):
        kiln.Context("not a plan")
    with pytest.raises(kiln.Error):
        plan.context(DEVICE).profile(good(plan), runs=0)


def test_random_garbage_arguments_never_crash(plan):
    rng = np.random.default_rng(5)
    ctx = plan.context(DEVICE)
    junk = [None, 0, -1, 1.5, "x", b"\x00", [], {}, (1,), np.zeros(0), np.zeros((2, 3, 4), np.int8),
            np.zeros((2, 3, 4), np.float32)[:, ::2], object(), np.float32(1), np.zeros((1,) * 17, np.float32)]
    for _ in range(300):
        feeds = {k: junk[rng.integers(len(junk))] for k in ("x", "ids") if rng.random() < 0.8}
        try:
            ctx.run(feeds)
        except kiln.Error:
            pass
    np.testing.assert_array_equal(ctx.run(good(plan))["ids_out"], good(plan)["ids"])


def test_junk_build_keywords_are_errors_not_crashes():
    junk = [None, 0, -7, 2.5, float("nan"), "", "x", b"\xff", [], [1, "a"], {}, {"input": None}, {"input": [1, -1]},
            {"input": "1x3"}, {3: 4}, object(), np.zeros(3), (1, 2)]
    keywords = ["device", "precision", "shapes", "min_shapes", "max_shapes", "layer_precision", "accuracy_budget",
                "calibrator", "smooth_quant", "partition", "cpu_nodes", "transfer_gbps", "freeze", "calib_cache", "tuning_cache", "allow_tf32",
                "fallback_precision", "io_precision"]
    rng = np.random.default_rng(8)
    for _ in range(150):
        kw = {k: junk[rng.integers(len(junk))] for k in rng.choice(keywords, 2, replace=False)}
        try:
            kiln.build(model("demo_cnn.onnx"), **kw)
        except kiln.Error as e:
            assert "\n" not in str(e), str(e)
