"""Serving throughput and latency: `kiln serve` (Triton) at client concurrency 1, 4 and 16 with
1 vs N model instances, next to onnxruntime behind the same PyTriton/Triton front end (the
nvidia-pytriton wheel has no onnxruntime backend of its own, only the Python backend).

    build/python-venv/bin/python perf/serve_bench.py --device cpu --instances 1 2 --seconds 8

One image (1x1x28x28, the Fashion-MNIST CNN of tests/models) per request over HTTP with
tritonclient, Triton's dynamic batching up to 8; prints a Markdown table.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "tests", "models", "fashion_cnn.onnx")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_ready(port, name, proc, timeout=240):
    import tritonclient.http as h
    c = h.InferenceServerClient("127.0.0.1:%d" % port)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            if c.is_server_ready() and c.is_model_ready(name):
                return
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready")


def load(port, name, concurrency, seconds):
    import tritonclient.http as h
    lat, lock, stop = [], threading.Lock(), threading.Event()
    x = np.random.default_rng(0).uniform(0, 1, (1, 1, 28, 28)).astype(np.float32)

    def client():
        c = h.InferenceServerClient("127.0.0.1:%d" % port)
        i = h.InferInput("input", [1, 1, 28, 28], "FP32")
        i.set_data_from_numpy(x)
        mine = []
        while not stop.is_set():
            t = time.perf_counter()
            c.infer(name, [i])
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm-up, then count afresh
    with lock:
        lat.clear()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1e3
    return len(ms) / wall, np.percentile(ms, 50), np.percentile(ms, 99)


ORT_SERVER = r'''
import sys, numpy as np, onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor, DynamicBatcher
from pytriton.triton import Triton, TritonConfig
model, instances, http, grpc, metrics = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
def make():
    so = ort.SessionOptions(); so.intra_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    @batch
    def infer(input):
        return {"logits": s.run(None, {"input": input})[0]}
    return infer
cfg = TritonConfig(http_address="127.0.0.1", http_port=http, grpc_address="127.0.0.1", grpc_port=grpc,
                   metrics_address="127.0.0.1", metrics_port=metrics)
with Triton(config=cfg) as t:
    t.bind(model_name="ort", infer_func=[make() for _ in range(instances)],
           inputs=[Tensor(name="input", dtype=np.float32, shape=(1, 28, 28))],
           outputs=[Tensor(name="logits", dtype=np.float32, shape=(-1,))],
           config=ModelConfig(max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=100)))
    t.serve()
'''


def run_server(kind, instances, device, plan):
    http, grpc, metrics = free_ports(3)
    if kind == "kiln":
        cmd = [sys.executable, "-m", "kiln", "serve", plan, "--instances", str(instances), "--max-batch", "8",
               "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
               "--address", "127.0.0.1", "--device", device]
        name = "fashion"
    else:
        cmd = [sys.executable, "-c", ORT_SERVER, MODEL, str(instances), str(http), str(grpc), str(metrics)]
        name = "ort"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(http, name, proc)
    return proc, http, name


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--no-ort", action="store_true")
    a = p.parse_args()
    import kiln
    tmp = tempfile.mkdtemp()
    plan = os.path.join(tmp, "fashion.plan")
    kiln.build(MODEL, device=a.device, min_shapes={"input": (1, 1, 28, 28)},
               max_shapes={"input": (8, 1, 28, 28)}).save(plan)
    rows = []
    for kind in ["kiln"] + ([] if a.no_ort else ["onnxruntime"]):
        for inst in a.instances:
            proc, port, name = run_server(kind, inst, a.device, plan)
            try:
                for c in a.concurrency:
                    qps, p50, p99 = load(port, name, c, a.seconds)
                    rows.append((kind, inst, c, qps, p50, p99))
                    print("| %s | %d | %d | %.0f | %.2f | %.2f |" % rows[-1], flush=True)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
