"""pytest setup for the Python package's tests: the device under test (KILN_TEST_DEVICE, cpu or
opencl), the committed models, and onnxruntime as the independent reference."""
import os

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "models")
DEVICE = os.environ.get("KILN_TEST_DEVICE", "cpu")


@pytest.fixture
def device():
    return DEVICE


def model(name):
    return os.path.join(MODELS, name)


def ort_session(path):
    ort = pytest.importorskip("onnxruntime")
    try:
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - a model this onnxruntime cannot load is skipped
        pytest.skip("onnxruntime cannot load %s: %s" % (os.path.basename(path), e))


def random_feeds(plan, seed=0, shapes=None):
    r = np.random.default_rng(seed)
    feeds = {}
    for i in plan.inputs:
        shape = (shapes or {}).get(i["name"], i["shape"])
        if i["dtype"].startswith("float"):
            feeds[i["name"]] = r.uniform(-1, 1, shape).astype(i["dtype"])
        else:
            feeds[i["name"]] = r.integers(0, 3, shape).astype(i["dtype"])
    return feeds
