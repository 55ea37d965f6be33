"""kiln serve on Triton over loopback: HTTP and gRPC answers equal `kiln run`'s; 16 clients x 200
requests, every answer checked; bad requests get an error reply and the server keeps serving;
health, readiness and metrics; a clean shutdown answers the requests in flight."""
import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import kiln
from conftest import DEVICE, Server, images

tritonclient = pytest.importorskip("tritonclient")
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402


def infer(client, module, model, name, x, out):
    i = module.InferInput(name, list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    return client.infer(model, [i]).as_numpy(out)


def kiln_run(plan, name, x, tmp_path, tag):
    """The CLI's answer (python -m kiln run = the kiln binary)."""
    np.save(tmp_path / ("%s.npy" % tag), x)
    out = tmp_path / ("out_%s" % tag)
    r = subprocess.run([sys.executable, "-m", "kiln", "run", plan, "-i", "%s=%s" % (name, tmp_path / ("%s.npy" % tag)),
                        "-o", str(out), "--device", DEVICE], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {f[:-4]: np.load(out / f) for f in os.listdir(out)}


def test_http_and_grpc_answer_as_kiln_run(server, plans, tmp_path):
    h = httpclient.InferenceServerClient("127.0.0.1:%d" % server.http)
    g = grpcclient.InferenceServerClient("127.0.0.1:%d" % server.grpc)
    for n in (1, 3, 8):
        x = images(n, seed=n)
        want = kiln_run(plans["fashion"], "input", x, tmp_path, "f%d" % n)["logits"]
        np.testing.assert_array_equal(infer(h, httpclient, "fashion", "input", x, "logits"), want)
        np.testing.assert_array_equal(infer(g, grpcclient, "fashion", "input", x, "logits"), want)
    x = np.random.default_rng(5).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    want = kiln_run(plans["demo"], "input", x, tmp_path, "demo")["probs"]
    np.testing.assert_array_equal(infer(h, httpclient, "demo", "input", x, "probs"), want)
    np.testing.assert_array_equal(infer(g, grpcclient, "demo", "input", x, "probs"), want)


def test_sixteen_clients_two_hundred_requests_each(server, plans):
    ctx = kiln.load(plans["fashion"]).context(DEVICE)
    errors, lock = [], threading.Lock()

    def client(c):
        module = httpclient if c % 2 == 0 else grpcclient
        port = server.http if c % 2 == 0 else server.grpc
        cl = module.InferenceServerClient("127.0.0.1:%d" % port)
        for i in range(200):
            x = images(1 + (i + c) % 4, seed=1000 * c + i)
            try:
                got = infer(cl, module, "fashion", "input", x, "logits")
                want = ctx_run(x)
                # Requests batched with others: the same kernels on more rows.
                if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                    raise AssertionError("answer differs (max %g)" % np.abs(got - want).max())
            except Exception as e:  # noqa: BLE001 - collected
                with lock:
                    errors.append("client %d request %d: %s" % (c, i, e))
                return

    ctx_lock = threading.Lock()

    def ctx_run(x):
        with ctx_lock:
            return ctx.run({"input": x})["logits"]

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(client, range(16)))
    assert not errors, errors[:5]


def raw_post(port, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def test_bad_requests_get_errors_and_serving_goes_on(server):
    h = httpclient.InferenceServerClient("127.0.0.1:%d" % server.http)
    x = images(2, seed=0)
    bad = [("nosuch", "input", x, "FP32", "unknown model|not found"),
           ("fashion", "pixels", x, "FP32", "unexpected inference input"),
           ("fashion", "input", x.astype(np.float64), "FP64", "data-type"),
           ("fashion", "input", np.zeros((2, 1, 27, 28), np.float32), "FP32", "shape"),
           ("fashion", "input", images(9, seed=1), "FP32", "batch-size")]
    for model, name, arr, dtype, pattern in bad:
        i = httpclient.InferInput(name, list(arr.shape), dtype)
        i.set_data_from_numpy(arr)
        with pytest.raises(Exception, match=pattern):
            h.infer(model, [i])
    # A body shorter than its header says (binary tensor data cut off).
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 3136}}]}).encode()
    status, data = raw_post(server.http, "/v2/models/fashion/infer", header + b"\0" * 100,
                            {"Inference-Header-Content-Length": str(len(header)),
                             "Content-Type": "application/octet-stream"})
    assert status >= 400, (status, data)
    status, data = raw_post(server.http, "/v2/models/fashion/infer", b"{not json", {})
    assert status >= 400, (status, data)
    g = grpcclient.InferenceServerClient("127.0.0.1:%d" % server.grpc)
    i = grpcclient.InferInput("input", [2, 1, 28, 27], "FP32")
    i.set_data_from_numpy(np.zeros((2, 1, 28, 27), np.float32))
    with pytest.raises(Exception, match="shape"):
        g.infer("fashion", [i])
    # Still serving, with right answers.
    assert h.is_server_live() and h.is_server_ready() and h.is_model_ready("fashion")
    x = images(3, seed=2)
    got = infer(h, httpclient, "fashion", "input", x, "logits")
    assert got.shape == (3, 10) and np.isfinite(got).all()


def test_health_readiness_metrics(server):
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/fashion/ready", "/v2/models/demo/ready"):
        conn = http.client.HTTPConnection("127.0.0.1", server.http, timeout=10)
        conn.request("GET", path)
        assert conn.getresponse().status == 200, path
    conn = http.client.HTTPConnection("127.0.0.1", server.metrics, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    assert 'nv_inference_request_success{model="fashion"' in text
    h = httpclient.InferenceServerClient("127.0.0.1:%d" % server.http)
    cfg = h.get_model_config("fashion")
    assert cfg["max_batch_size"] == 8 and len(cfg["instance_group"]) >= 1
    assert sum(g["count"] for g in cfg["instance_group"]) == 2, cfg["instance_group"]
    assert h.get_model_config("demo")["max_batch_size"] == 0


def test_clean_shutdown_answers_requests_in_flight(plans, tmp_path):
    # Triton holds requests up to 1 s to fill a batch of 8: the 4 sent are certainly in flight
    # (queued in the batcher) when SIGINT arrives, and must all be answered.
    s = Server([plans["fashion"]], str(tmp_path), instances=1, extra=["--max-queue-delay-us", "1000000"])
    try:
        ctx = kiln.load(plans["fashion"]).context(DEVICE)
        inputs = [images(1, seed=i) for i in range(4)]
        wants = [ctx.run({"input": x})["logits"] for x in inputs]
        results = {}

        def one(i):
            cl = httpclient.InferenceServerClient("127.0.0.1:%d" % s.http, network_timeout=60)
            try:
                results[i] = infer(cl, httpclient, "fashion", "input", inputs[i], "logits")
            except Exception as e:  # noqa: BLE001 - checked below
                results[i] = e

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(one, i) for i in range(4)]
            time.sleep(0.4)
            assert not any(f.done() for f in futs), "answered before the batcher's delay: not in flight"
            t0 = time.time()
            code = s.stop()
            for f in futs:
                f.result()
        assert code == 0, s.text()
        for i in range(4):
            assert not isinstance(results[i], Exception), results[i]
            np.testing.assert_allclose(results[i], wants[i], rtol=1e-5, atol=1e-5)
        assert "kiln serve: stopped" in s.text()
        assert time.time() - t0 < 60
    finally:
        s.stop()


def test_bad_command_lines_are_one_line_errors(plans, tmp_path):
    for args, pattern in ((["missing.plan"], "missing.plan"), ([plans["demo"], "--instances", "0"], "--instances"),
                          ([plans["demo"], plans["demo"]], "same model name")):
        r = subprocess.run([sys.executable, "-m", "kiln", "serve", *args, "--address", "127.0.0.1", "--device", DEVICE],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and pattern in r.stderr, (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0, r.stderr


def test_the_stub_handshake_waits_for_a_socket_bound_but_not_yet_listening(tmp_path):
    """kiln serve's patch of pytriton 0.7.0's stub (kiln.serve.patch_stub_handshake): a config
    socket that instance 0 has bound but not yet listens on is retried until it listens; the
    unpatched function gives up at once with ConnectionRefusedError (the python.serve failure)."""
    import pathlib
    import socket

    import pytriton.proxy.communication as comm
    from kiln.serve import patch_stub_handshake
    source = pathlib.Path(comm.__file__).read_text()
    patched = patch_stub_handshake(source)
    assert patched != source, "pytriton's communication.py changed: kiln serve no longer patches it"
    ns = {"__name__": "patched_communication"}
    exec(compile(patched, comm.__file__, "exec"), ns)
    path = tmp_path / "m-config.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))  # bound, not listening: what instance 1 meets in the race
    listening = threading.Event()

    def listen_later():
        time.sleep(0.3)
        server.listen(1)
        listening.set()
        conn, _ = server.accept()
        assert conn.recv(64) == b"get_config\n"
        payload = json.dumps({"data_socket": "d.sock"}).encode()
        conn.sendall(len(payload).to_bytes(4, "big") + payload)
        conn.close()

    t = threading.Thread(target=listen_later)
    t.start()
    try:
        with pytest.raises(ConnectionRefusedError):
            comm.get_config_from_handshake_server(path, timeout_s=5)
        assert not listening.is_set()
        assert ns["get_config_from_handshake_server"](path, timeout_s=5) == {"data_socket": "d.sock"}
    finally:
        t.join(10)
        server.close()


def test_a_lost_handshake_race_loads_the_model_again(plans, tmp_path):
    """Both models' first loads fail as pytriton 0.7.0's stub does when an instance connects to
    instance 0's config socket between its bind and its listen (lose_handshake_race.py): kiln
    serve loads each again and then answers as kiln run."""
    launcher = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "lose_handshake_race.py")]
    s = Server([plans["fashion"], plans["demo"]], str(tmp_path), launcher=launcher)
    try:
        log = s.text()
        for name in ("fashion", "demo"):
            assert "model '%s': Triton's python stub lost its handshake race" % name in log, log
        h = httpclient.InferenceServerClient("127.0.0.1:%d" % s.http)
        x = images(3, seed=7)
        want = kiln_run(plans["fashion"], "input", x, tmp_path, "race")["logits"]
        np.testing.assert_array_equal(infer(h, httpclient, "fashion", "input", x, "logits"), want)
        assert s.stop() == 0, s.text()
    finally:
        s.stop()
