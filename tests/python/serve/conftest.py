"""A kiln serve (Triton) server over loopback for the serving tests: plans of the committed
models, free ports, started as `python -m kiln serve` and stopped with SIGINT in a finally."""
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "..", "models")
DEVICE = os.environ.get("KILN_TEST_DEVICE", "cpu")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Server:
    def __init__(self, plans, workdir, instances=2, max_batch=8, extra=(), launcher=("-m", "kiln", "serve")):
        self.http, self.grpc, self.metrics = free_ports(3)
        self.log_path = os.path.join(workdir, "serve-%d.log" % self.http)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, *plans, "--instances", str(instances), "--max-batch",
             str(max_batch), "--http-port", str(self.http), "--grpc-port", str(self.grpc), "--metrics-port",
             str(self.metrics), "--address", "127.0.0.1", "--device", DEVICE, *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        import tritonclient.http as h
        client = h.InferenceServerClient("127.0.0.1:%d" % self.http)
        names = [os.path.splitext(os.path.basename(p))[0] for p in plans]
        deadline = time.time() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("kiln serve exited (%d):\n%s" % (self.proc.returncode, self.text()))
            try:
                if client.is_server_ready() and all(client.is_model_ready(n) for n in names):
                    break
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("kiln serve not ready after 180 s:\n" + self.text())
            time.sleep(0.5)

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-6000:]

    def stop(self, timeout=90):
        """SIGINT, then the exit code (Triton answers what is in flight first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def plans(tmp_path_factory):
    import kiln
    d = tmp_path_factory.mktemp("plans")
    cnn = kiln.build(os.path.join(MODELS, "fashion_cnn.onnx"), device=DEVICE, min_shapes={"input": (1, 1, 28, 28)},
                     max_shapes={"input": (16, 1, 28, 28)})
    cnn.save(d / "fashion.plan")
    demo = kiln.build(os.path.join(MODELS, "demo_cnn.onnx"), device=DEVICE)
    demo.save(d / "demo.plan")
    return {"fashion": str(d / "fashion.plan"), "demo": str(d / "demo.plan")}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the server shows the server's log too (the log file itself goes
    with pytest's temp folder, and the failure may be on the server's side: a stub that stopped
    answering, say)."""
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("server") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(server, Server):
        report.sections.append(("kiln serve log (last 6000 characters)", server.text()))


@pytest.fixture(scope="session")
def server(plans, tmp_path_factory):
    s = Server([plans["fashion"], plans["demo"]], str(tmp_path_factory.mktemp("serve")))
    try:
        yield s
    finally:
        s.stop()


def images(n, seed):
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 28, 28)).astype(np.float32)
