"""Concurrency: 8 Python threads x 200 runs on their own contexts of one plan give bit-exact the
outputs of one thread; run_async futures; the GIL is released while kiln runs."""
import concurrent.futures
import threading
import time

import numpy as np

import kiln
from conftest import DEVICE, model, random_feeds

THREADS, RUNS = 8, 200


def test_eight_threads_bit_exact_with_one():
    plan = kiln.build(model("demo_cnn.onnx"), device=DEVICE)
    inputs = [random_feeds(plan, seed=s) for s in range(RUNS)]
    ctx = plan.context(DEVICE)
    want = [ctx.run(x)["probs"].copy() for x in inputs]
    ctx.close()
    errors = []

    def worker(t):
        try:
            with plan.context(DEVICE) as c:
                for i in range(RUNS):
                    k = (i + 37 * t) % RUNS  # each thread its own order
                    got = c.run(inputs[k])["probs"]
                    if not np.array_equal(got, want[k]):
                        errors.append("thread %d run %d: differs" % (t, i))
                        return
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("thread %d: %r" % (t, e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]


def test_one_context_shared_by_threads_takes_turns():
    plan = kiln.build(model("demo_cnn.onnx"), device=DEVICE)
    ctx = plan.context(DEVICE)
    inputs = [random_feeds(plan, seed=s) for s in range(16)]
    want = [plan.context(DEVICE).run(x)["probs"] for x in inputs]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda x: ctx.run(x)["probs"], inputs * 4))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, want[i % 16])


def test_run_async_futures():
    plan = kiln.build(model("demo_cnn.onnx"), device=DEVICE)
    inputs = [random_feeds(plan, seed=s) for s in range(8)]
    ctxs = [plan.context(DEVICE) for _ in range(4)]
    want = [ctxs[0].run(x)["probs"] for x in inputs]
    futs = [ctxs[i % 4].run_async(x) for i, x in enumerate(inputs)]
    for f, w in zip(futs, want):
        assert isinstance(f, concurrent.futures.Future)
        np.testing.assert_array_equal(f.result(timeout=60)["probs"], w)
    # A failing inference reaches the future as kiln.Error: an input of the wrong dtype is
    # refused when bound, before anything runs.
    try:
        ctxs[1].run_async({"input": np.zeros((1, 3, 32, 32), np.float64)})
        raise AssertionError("a float64 input was accepted")
    except kiln.Error as e:
        assert "float" in str(e)


def test_gil_released_while_kiln_runs():
    # While one thread runs inferences, another Python thread keeps counting.
    plan = kiln.build(model("fashion_cnn.onnx"), device=DEVICE, shapes={"input": (64, 1, 28, 28)})
    ctx = plan.context(DEVICE)
    x = random_feeds(plan)
    ctx.run(x)
    stop = threading.Event()
    count = [0]

    def spin():
        while not stop.is_set():
            count[0] += 1

    th = threading.Thread(target=spin)
    th.start()
    t0 = time.perf_counter()
    runs = 0
    while time.perf_counter() - t0 < 0.5:
        ctx.run(x)
        runs += 1
    stop.set()
    th.join()
    assert runs > 0 and count[0] > 1000, (runs, count[0])
