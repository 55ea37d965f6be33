#!/usr/bin/env python3
"""Trains the small CNN of the accuracy tests on Fashion-MNIST and writes it as ONNX.

Run with the tooling venv (numpy + onnx; onnxruntime checks the export):

    .venv/bin/python scripts/train_fashion_mnist.py [-o tests/models/fashion_cnn.onnx]

Data: Debian's dataset-fashion-mnist (scripts/setup.sh installs it; --data overrides the folder).
Training is plain numpy (no torch: PyPI's torch pulls gigabytes of CUDA wheels) with a fixed
seed; a rerun with the same numpy and BLAS should give the same model (not checked bit for bit:
BLAS threading may reorder sums).

Model (input "input": float32 [N,1,28,28], pixels / 255; output "logits": float32 [N,10]):
    Conv 3x3 1->8 pad 1, Relu, MaxPool 2  ->  Conv 3x3 8->16 pad 1, Relu, MaxPool 2
    ->  Flatten  ->  Gemm 784->10
Adam (lr 1e-3, halved each epoch from the third), batch 128, 6 epochs, He initialisation.

Log of the run that wrote the committed tests/models/fashion_cnn.onnx (numpy 2.2.6, onnx 1.17.0;
2 cores shared with other jobs, hence the uneven epoch times):
    epoch 1: loss 0.5858  test top-1 85.43%  (317 s)
    epoch 2: loss 0.3808  test top-1 86.47%  (215 s)
    epoch 3: loss 0.3405  test top-1 87.83%  (484 s)
    epoch 4: loss 0.3224  test top-1 87.77%  (866 s)
    epoch 5: loss 0.3148  test top-1 88.24%  (169 s)
    epoch 6: loss 0.3105  test top-1 88.29%  (205 s)
    numpy 88.29%, onnxruntime 88.29% on the 10,000 test images
The model is kept small (0.55 MFLOP per image) so that the accuracy test runs all 10,000 test
images per precision through PoCL in seconds.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "fashion_cnn.onnx")
C1, C2, CLASSES = 8, 16, 10
SEED = 20261123


def read_idx(path):
    """An idx file (gzip): big-endian magic (dtype code, rank), dims, then the data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        sys.exit(f"{path}: not an unsigned-byte idx file")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * rank)
    if body.size != int(np.prod(dims)):
        sys.exit(f"{path}: {body.size} bytes of data for dims {dims}")
    return body.reshape(dims)


def load_split(data_dir, split):
    """Images as float32 NHWC in [0, 1] and int64 labels; split is 'train' or 't10k'."""
    images = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    return (images.astype(np.float32) / 255.0)[..., None], labels.astype(np.int64)


# --------------------------------------------------------------------------- layers (NHWC)
def im2col3x3(x):
    """(N,H,W,C) -> (N*H*W, C*9), 'same' padding; columns ordered (c, kh, kw) like OIHW."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # N,H,W,C,3,3
    return np.ascontiguousarray(win).reshape(n * h * w, c * 9)


def col2im3x3(dcols, shape):
    n, h, w, c = shape
    d = dcols.reshape(n, h, w, c, 3, 3)
    dxp = np.zeros((n, h + 2, w + 2, c), np.float32)
    for kh in range(3):
        for kw in range(3):
            dxp[:, kh:kh + h, kw:kw + w, :] += d[..., kh, kw]
    return dxp[:, 1:-1, 1:-1, :]


def conv_forward(x, wmat, b):
    cols = im2col3x3(x)
    n, h, w, _ = x.shape
    return (cols @ wmat.T + b).reshape(n, h, w, -1), cols


def pool_forward(x):
    n, h, w, c = x.shape
    r = x.reshape(n, h // 2, 2, w // 2, 2, c)
    out = r.max(axis=(2, 4))
    return out, (r == out[:, :, None, :, None, :])


def pool_backward(dout, mask, shape):
    return (mask * dout[:, :, None, :, None, :]).reshape(shape)


class Model:
    def __init__(self, rng):
        he = lambda fan_in, shape: (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        self.p = {
            "w1": he(9, (C1, 9)), "b1": np.zeros(C1, np.float32),
            "w2": he(C1 * 9, (C2, C1 * 9)), "b2": np.zeros(C2, np.float32),
            "w3": he(C2 * 49, (7 * 7 * C2, CLASSES)), "b3": np.zeros(CLASSES, np.float32),
        }

    def forward(self, x, keep=False):
        p = self.p
        z1, cols1 = conv_forward(x, p["w1"], p["b1"])
        a1 = np.maximum(z1, 0)
        h1, m1 = pool_forward(a1)
        z2, cols2 = conv_forward(h1, p["w2"], p["b2"])
        a2 = np.maximum(z2, 0)
        h2, m2 = pool_forward(a2)
        logits = h2.reshape(len(x), -1) @ p["w3"] + p["b3"]
        if keep:
            self.cache = (x, cols1, a1, m1, h1, cols2, a2, m2, h2)
        return logits

    def backward(self, dlogits):
        p = self.p
        x, cols1, a1, m1, h1, cols2, a2, m2, h2 = self.cache
        g = {"w3": h2.reshape(len(x), -1).T @ dlogits, "b3": dlogits.sum(0)}
        dh2 = (dlogits @ p["w3"].T).reshape(h2.shape)
        dz2 = pool_backward(dh2, m2, a2.shape) * (a2 > 0)
        dz2f = dz2.reshape(-1, C2)
        g["w2"], g["b2"] = dz2f.T @ cols2, dz2f.sum(0)
        dh1 = col2im3x3(dz2f @ p["w2"], h1.shape)
        dz1 = pool_backward(dh1, m1, a1.shape) * (a1 > 0)
        dz1f = dz1.reshape(-1, C1)
        g["w1"], g["b1"] = dz1f.T @ cols1, dz1f.sum(0)
        return g


def softmax_xent(logits, labels):
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(1, keepdims=True)
    loss = -np.log(prob[np.arange(len(labels)), labels] + 1e-12).mean()
    d = prob
    d[np.arange(len(labels)), labels] -= 1
    return loss, (d / len(labels)).astype(np.float32)


def predict(model, x, batch=1000):
    return np.concatenate([model.forward(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])


def train(model, x, y, xt, yt, epochs, rng):
    m = {k: np.zeros_like(v) for k, v in model.p.items()}
    v = {k: np.zeros_like(v) for k, v in model.p.items()}
    b1, b2, eps, step, lr = 0.9, 0.999, 1e-8, 0, 1e-3
    for epoch in range(1, epochs + 1):
        if epoch >= 3:
            lr *= 0.5
        order = rng.permutation(len(x))
        losses, t0 = [], time.time()
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            loss, dlogits = softmax_xent(model.forward(x[idx], keep=True), y[idx])
            grads = model.backward(dlogits)
            step += 1
            for k, g in grads.items():
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mh, vh = m[k] / (1 - b1 ** step), v[k] / (1 - b2 ** step)
                model.p[k] -= (lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
            losses.append(loss)
        acc = (predict(model, xt) == yt).mean() * 100
        print(f"epoch {epoch}: loss {np.mean(losses):.4f}  test top-1 {acc:.2f}%  ({time.time() - t0:.0f} s)",
              flush=True)


# --------------------------------------------------------------------------- ONNX export
def export(model, path):
    p = model.p
    # Training keeps NHWC; ONNX is NCHW: conv weights (O, C*9) are already (c, kh, kw)-ordered,
    # and the classifier's rows go from (h, w, c) to Flatten's (c, h, w) order.
    w3 = p["w3"].reshape(7, 7, C2, CLASSES).transpose(2, 0, 1, 3).reshape(C2 * 49, CLASSES)
    inits = [
        numpy_helper.from_array(p["w1"].reshape(C1, 1, 3, 3), "conv1.w"),
        numpy_helper.from_array(p["b1"], "conv1.b"),
        numpy_helper.from_array(p["w2"].reshape(C2, C1, 3, 3), "conv2.w"),
        numpy_helper.from_array(p["b2"], "conv2.b"),
        numpy_helper.from_array(np.ascontiguousarray(w3), "fc.w"),
        numpy_helper.from_array(p["b3"], "fc.b"),
    ]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], name="conv1", **conv),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", **pool),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], name="conv2", **conv),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", **pool),
        helper.make_node("Flatten", ["p2"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "fashion_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])], inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                   producer_name="kiln scripts/train_fashion_mnist.py")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    with open(path, "wb") as f:
        f.write(onnx_model.SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder with the Fashion-MNIST idx.gz files")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()

    rng = np.random.default_rng(SEED)
    x, y = load_split(args.data, "train")
    xt, yt = load_split(args.data, "t10k")
    model = Model(rng)
    train(model, x, y, xt, yt, args.epochs, rng)
    export(model, args.output)

    numpy_acc = (predict(model, xt) == yt).mean() * 100
    import onnxruntime as ort
    sess = ort.InferenceSession(args.output, providers=["CPUExecutionProvider"])
    ort_pred = sess.run(None, {"input": xt.transpose(0, 3, 1, 2).copy()})[0].argmax(1)
    ort_acc = (ort_pred == yt).mean() * 100
    print(f"numpy {numpy_acc:.2f}%, onnxruntime {ort_acc:.2f}% on the {len(yt):,} test images")
    print("wrote", os.path.abspath(args.output))
    if abs(numpy_acc - ort_acc) > 0.05:
        sys.exit("the exported model disagrees with the trained one")


if __name__ == "__main__":
    main()
