"""kiln serve: kiln plans behind Triton Inference Server (the real `tritonserver` that PyPI's
nvidia-pytriton wheel ships), one Triton model per plan.

    python -m kiln.serve model.plan [more.plan ...] --instances 2 --max-batch 8 \\
        --http-port 8000 --grpc-port 8001 --metrics-port 8002

Each model has N instances, each its own kiln context over one shared plan (weights uploaded
once per context's device); a plan with a dynamic batch dimension (built with
--min-shapes/--max-shapes on dim 0 from 1) gets Triton's dynamic batching up to --max-batch
(capped at the plan's max). Triton's health, readiness and metrics endpoints come with it
(/v2/health/ready, /v2/models/NAME/ready, :METRICS/metrics). SIGINT or SIGTERM stops the
server after the requests in flight are answered.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import kiln


def model_name(path: str) -> str:
    """The Triton model name of a plan file: its stem, with characters Triton refuses as '_'."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "model"


def batch_range(plan: kiln.Plan) -> Optional[int]:
    """The largest batch of a plan whose every input and output has a dynamic dim 0 from 1, or
    None when the plan cannot batch requests."""
    ins = plan.inputs
    if not ins or any(len(i["shape"]) == 0 or i["min_shape"][0] != 1 or i["max_shape"][0] < 2 for i in ins):
        return None
    if len({i["max_shape"][0] for i in ins}) != 1 or any(len(o["shape"]) == 0 for o in plan.outputs):
        return None
    return ins[0]["max_shape"][0]


def triton_dims(t: Dict[str, Any], batched: bool) -> tuple:
    lo = t.get("min_shape", t["shape"])
    dims = [d if lo[k] == d else -1 for k, d in enumerate(t["shape"])]
    return tuple(dims[1:] if batched else dims)


class Served:
    """One plan as a Triton model: its tensors, batching and one inference function per instance."""

    def __init__(self, path: str, instances: int, max_batch: int, device: str):
        self.path = path
        self.name = model_name(path)
        self.plan = kiln.load(path)
        limit = batch_range(self.plan)
        self.max_batch = min(max_batch, limit) if (limit and max_batch > 0) else 0
        self.contexts = [self.plan.context(device) for _ in range(instances)]
        self.outputs = [o["name"] for o in self.plan.outputs]

    def tensors(self):
        from pytriton.model_config import Tensor
        batched = self.max_batch > 0
        ins = [Tensor(name=i["name"], dtype=np.dtype(i["dtype"]).type, shape=triton_dims(i, batched))
               for i in self.plan.inputs]
        # Output dims are checked by kiln (they follow the inputs): any size on each axis.
        outs = [Tensor(name=o["name"], dtype=np.dtype(o["dtype"]).type, shape=(-1,) * (len(o["shape"]) - batched))
                for o in self.plan.outputs]
        return ins, outs

    def infer_functions(self) -> List[Any]:
        from pytriton.decorators import batch
        funcs = []
        for ctx in self.contexts:
            if self.max_batch > 0:
                def run_batch(_ctx=ctx, **inputs):
                    return _ctx.run(inputs)
                funcs.append(batch(run_batch))
            else:
                def run_each(requests, _ctx=ctx):
                    return [_ctx.run(dict(r.data)) for r in requests]
                funcs.append(run_each)
        return funcs


# nvidia-pytriton 0.7.0's stub: instance 0 of a model binds a Unix socket and then listens on it
# (asyncio.start_unix_server), while the other instances, initialized by Triton in parallel,
# connect as soon as the file exists and do not retry; one landing between the bind and the
# listen fails the model's load with ConnectionRefusedError in get_config_from_handshake_server
# (seen about once in ten serving test runs on a loaded 2-core host). Loading again is safe.
HANDSHAKE_RACE = "get_config_from_handshake_server"
LOAD_ATTEMPTS = 3

# The fix at the source: the stub's communication.py, as kiln serve sends it to Triton, retries a
# refused connect until its deadline, and that deadline is 60 s instead of 1 (an instance 0 still
# starting on a loaded host timed the others out: pytriton issue #109). The loads above remain
# for a pytriton whose source differs (then it goes unpatched).
STUB_CONNECT = """        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(0.0, should_stop_before_s - time.time()))
        sock.connect(socket_path.as_posix())
"""
STUB_CONNECT_RETRIED = """        while True:  # kiln serve: instance 0 binds its socket before it listens on it
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(max(0.0, should_stop_before_s - time.time()))
            try:
                sock.connect(socket_path.as_posix())
                break
            except ConnectionRefusedError:
                sock.close()
                sock = None
                if time.time() >= should_stop_before_s:
                    raise
                time.sleep(0.01)
"""
STUB_TIMEOUT = "def get_config_from_handshake_server(socket_path: pathlib.Path, timeout_s: float = 1.0) -> dict:"


def patch_stub_handshake(source: str) -> str:
    """pytriton 0.7.0's proxy communication.py with the handshake retried (unchanged if it differs)."""
    if STUB_CONNECT not in source or STUB_TIMEOUT not in source:
        return source
    return source.replace(STUB_CONNECT, STUB_CONNECT_RETRIED, 1).replace(STUB_TIMEOUT,
                                                                          STUB_TIMEOUT.replace("1.0", "60.0"), 1)


def install_stub_patch() -> None:
    """Makes every model's files carry the patched communication.py (pytriton 0.7.0's Model)."""
    from pytriton.models.model import Model
    if getattr(Model.get_proxy_model_files, "kiln_patched", False):
        return
    original = Model.get_proxy_model_files

    def proxy_model_files(self):
        files = original(self)
        key = "file:%d/communication.py" % self.model_version
        if key in files:
            files[key] = patch_stub_handshake(files[key].decode()).encode()
        return files
    proxy_model_files.kiln_patched = True
    Model.get_proxy_model_files = proxy_model_files


def load_again(triton: Any, name: str) -> None:
    """Loads a bound model whose load failed, as pytriton 0.7.0's ModelManager._load_model does but
    without its wait for the server to be ready: with Triton's strict readiness a server holding a
    model that failed to load is never ready, so that wait would only time out (after 120 s).
    The failed load's config socket file stays behind (Python 3.11's asyncio does not remove it),
    and the other instances would connect to it at once, before instance 0 binds it again: it goes
    first."""
    from pytriton.client import ModelClient
    manager = triton._model_manager
    model = next(m for m in manager.models if m.model_name == name)
    workspace = model._get_triton_model_config().backend_parameters["workspace-path"]
    stale_socket = os.path.join(workspace, "%s-config.sock" % name)
    if os.path.exists(stale_socket):
        os.remove(stale_socket)
    local_store = manager._model_store_path is not None
    with ModelClient(url=manager._triton_url, model_name=name, model_version=str(model.model_version),
                     access_token=manager._access_token) as client:
        client.load_model(config=None if local_store else json.dumps(model.get_model_config()),
                          files=None if local_store else model.get_proxy_model_files())
    model.setup()


def bind_model(triton: Any, name: str, **bind_args: Any) -> None:
    """triton.bind(), loading the model again when it lost the stub's handshake race."""
    for attempt in range(1, LOAD_ATTEMPTS + 1):
        try:
            if attempt == 1:
                triton.bind(model_name=name, **bind_args)
            else:
                load_again(triton, name)
            return
        except Exception as e:  # tritonclient's InferenceServerException, from the load
            if HANDSHAKE_RACE not in str(e) or attempt == LOAD_ATTEMPTS:
                raise
            print("kiln serve: model '%s': Triton's python stub lost its handshake race (pytriton 0.7.0); loading "
                  "it again (attempt %d of %d)" % (name, attempt + 1, LOAD_ATTEMPTS), flush=True)


def serve(plans: Sequence[str], *, instances: int = 1, max_batch: int = 8, http_port: int = 8000,
          grpc_port: int = 8001, metrics_port: int = 8002, device: str = "auto", address: str = "0.0.0.0",
          max_queue_delay_us: int = 100, exit_timeout_s: int = 30, verbose: bool = False) -> None:
    """Starts Triton with one model per plan and blocks until SIGINT/SIGTERM."""
    try:
        from pytriton.model_config import DynamicBatcher, ModelConfig
        from pytriton.triton import Triton, TritonConfig
    except ImportError:
        raise kiln.Error("kiln serve needs nvidia-pytriton (pip install 'nvidia-pytriton==0.7.0', in a venv made "
                         "from Debian's python3; see README 'Serving')") from None
    if instances < 1:
        raise kiln.Error("--instances needs a positive number")
    if not plans:
        raise kiln.Error("kiln serve needs at least one PLAN")
    names = [model_name(p) for p in plans]
    if len(set(names)) != len(names):
        raise kiln.Error("two plans give the same model name (%s): rename one file" % ", ".join(names))
    served = [Served(p, instances, max_batch, device) for p in plans]
    install_stub_patch()
    config = TritonConfig(http_address=address, http_port=http_port, grpc_address=address, grpc_port=grpc_port,
                          metrics_address=address, metrics_port=metrics_port, exit_timeout_secs=exit_timeout_s,
                          log_verbose=1 if verbose else 0)

    def terminate(signum, frame):  # SIGTERM as SIGINT: Triton's own graceful stop
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, terminate)
    with Triton(config=config) as triton:
        for s in served:
            ins, outs = s.tensors()
            batcher = DynamicBatcher(max_queue_delay_microseconds=max_queue_delay_us)
            cfg = ModelConfig(batching=s.max_batch > 0, max_batch_size=max(s.max_batch, 0), batcher=batcher)
            bind_model(triton, s.name, infer_func=s.infer_functions(), inputs=ins, outputs=outs, config=cfg,
                       strict=False)
            print("kiln serve: model '%s' from %s on %s, %d instance(s), %s" %
                  (s.name, s.path, s.contexts[0].device, instances,
                   "dynamic batching up to %d" % s.max_batch if s.max_batch else "no batching"), flush=True)
        triton.run()
        print("kiln serve: ready: http %s:%d, grpc %s:%d, metrics %s:%d" %
              (address, http_port, address, grpc_port, address, metrics_port), flush=True)
        triton.serve()
    for s in served:
        for c in s.contexts:
            c.close()
    print("kiln serve: stopped", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="kiln serve", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plans", nargs="+", metavar="PLAN", help="plan files (each becomes a model named after its file)")
    p.add_argument("--instances", type=int, default=1, help="model instances per plan, each its own kiln context")
    p.add_argument("--max-batch", type=int, default=8, help="dynamic batching limit for plans with a dynamic batch dim")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--address", default="0.0.0.0", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--device", default="auto", help="cpu | opencl | opencl:N | auto")
    p.add_argument("--max-queue-delay-us", type=int, default=100, help="how long Triton waits to fill a batch")
    p.add_argument("--verbose", action="store_true", help="Triton's verbose log")
    a = p.parse_args(argv)
    try:
        serve(a.plans, instances=a.instances, max_batch=a.max_batch, http_port=a.http_port, grpc_port=a.grpc_port,
              metrics_port=a.metrics_port, device=a.device, address=a.address,
              max_queue_delay_us=a.max_queue_delay_us, verbose=a.verbose)
    except kiln.Error as e:
        print("kiln serve: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
