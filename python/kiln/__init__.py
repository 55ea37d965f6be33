"""kiln: an ahead-of-time ONNX inference compiler and OpenCL runtime, from Python.

    import kiln, numpy as np
    plan = kiln.build("model.onnx", device="auto", precision="fp32")   # ONNX -> plan
    ctx = plan.context()                                              # weights uploaded once
    out = ctx.run({"input": np.zeros((1, 3, 224, 224), np.float32)}) # {output name: array}
    plan.save("model.plan"); plan = kiln.load("model.plan")

`kiln.InferenceSession` is a drop-in for `onnxruntime.InferenceSession` (see kiln.session).
Every error kiln reports is raised as `kiln.Error` with kiln's one-line message.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _kiln
from ._kiln import Error

__all__ = ["Error", "Plan", "Context", "devices", "build", "load", "compare", "sweep", "InferenceSession",
           "__version__"]
__version__ = _kiln.version()


def devices() -> List[Dict[str, str]]:
    """The devices kiln can run on: `cpu` (the host reference backend) and `opencl:N`, each as
    {"name": spec, "description": text}. Any of the names is a valid `device=` argument, as is
    "auto" (an OpenCL GPU, else any OpenCL device, else the cpu)."""
    out = [{"name": "cpu", "description": "host CPU backend (reference and fallback; every op)"}]
    for i in range(_kiln.device_count()):
        out.append({"name": "opencl:%d" % i, "description": _kiln.device_name(i)})
    return out


def _model_arg(model: Any):
    """(path, bytes, base_dir) from a path, bytes or an onnx.ModelProto."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model), None, ""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return None, bytes(model), os.getcwd()
    if hasattr(model, "SerializeToString"):  # onnx.ModelProto, without importing onnx
        return None, model.SerializeToString(), os.getcwd()
    raise Error("model: expected a path, bytes or an onnx.ModelProto, got %s" % type(model).__name__)


def _array(value: Any, what: str) -> np.ndarray:
    """A C-contiguous array without copying one that already is (0-d arrays stay 0-d)."""
    try:
        return np.asarray(value, order="C")
    except Exception as e:  # noqa: BLE001 - any conversion failure is a bad argument
        raise Error("%s: cannot be read as a numpy array (%s)" % (what, e)) from None


def _samples(samples: Optional[Iterable[Mapping[str, Any]]], what: str):
    if samples is None:
        return None
    if isinstance(samples, Mapping):
        raise Error("%s: expected an iterable of {input name: array} dicts, got one dict" % what)
    try:
        it = iter(samples)
    except TypeError:
        raise Error("%s: expected an iterable of {input name: array} dicts" % what) from None

    def gen():
        for i, s in enumerate(it):
            if not isinstance(s, Mapping):
                raise Error("%s: sample #%d is a %s, not a {input name: array} dict" % (what, i, type(s).__name__))
            yield {str(k): _array(v, "%s sample #%d array '%s'" % (what, i, k)) for k, v in s.items()}
    return gen()


def _dims(value: Any, what: str) -> List[int]:
    if isinstance(value, str):
        try:
            return [int(d) for d in value.lower().split("x")]
        except ValueError:
            raise Error("%s: bad dims '%s' (expected e.g. 1x3x224x224)" % (what, value)) from None
    try:
        return [int(d) for d in value]
    except (TypeError, ValueError):
        raise Error("%s: expected a sequence of ints or a string like 1x3x224x224" % what) from None


def _options(device=None, precision=None, fallback_precision=None, io_precision=None, shapes=None, min_shapes=None, max_shapes=None,
             layer_precision=None,
             accuracy_budget=None, calibrator=None, calib_dir=None, calib_cache=None, smooth_quant=None, fuse=True,
             partition=None, bias_correction=True, accuracy_check=True, cpu_nodes=None, transfer_gbps=None, freeze=None, tune=False, tuning_cache=None,
             allow_tf32=False, max_memory=None, allow_over_memory=False):
    opts: Dict[str, Any] = {}
    if device is not None:
        opts["device"] = str(device)
    if precision is not None:
        opts["precision"] = str(precision)
    if fallback_precision is not None:
        opts["fallback_precision"] = str(fallback_precision)
    if io_precision is not None:
        opts["io_precision"] = str(io_precision)
    if layer_precision:
        opts["layer_precision"] = {str(k): str(v) for k, v in dict(layer_precision).items()}
    if shapes:
        opts["shapes"] = {str(k): _dims(v, "shapes['%s']" % k) for k, v in dict(shapes).items()}
    min_shapes, max_shapes = dict(min_shapes or {}), dict(max_shapes or {})
    if set(min_shapes) != set(max_shapes):
        missing = sorted(set(min_shapes) ^ set(max_shapes))
        raise Error("min_shapes and max_shapes must name the same inputs (only one names %s)" % ", ".join(missing))
    if min_shapes:
        opts["shape_ranges"] = {str(k): (_dims(min_shapes[k], "min_shapes['%s']" % k),
                                         _dims(max_shapes[k], "max_shapes['%s']" % k)) for k in min_shapes}
    if freeze:
        opts["freeze"] = {str(k): _array(v, "freeze['%s']" % k) for k, v in dict(freeze).items()}
    opts["fuse"] = bool(fuse)
    opts["bias_correction"] = bool(bias_correction)
    opts["accuracy_check"] = bool(accuracy_check)
    if partition is not None:
        opts["partition"] = str(partition)
    if cpu_nodes:
        if isinstance(cpu_nodes, str):
            cpu_nodes = [n for n in cpu_nodes.split(",") if n]
        opts["cpu_nodes"] = [str(n) for n in cpu_nodes]
    for key, value in (("transfer_gbps", transfer_gbps), ("accuracy_budget", accuracy_budget),
                       ("smooth_quant", smooth_quant)):
        if value is not None:
            try:
                opts[key] = float(value)
            except (TypeError, ValueError):
                raise Error("%s: expected a number, got %r" % (key, value)) from None
    if calibrator is not None:
        opts["calibrator"] = str(calibrator)
    if calib_dir is not None:
        opts["calib_dir"] = os.fsdecode(os.fspath(calib_dir))
    if calib_cache is not None:
        opts["calib_cache"] = os.fsdecode(os.fspath(calib_cache))
    if tune or tuning_cache:
        opts["tune"] = (bool(tune), None if tuning_cache is None else os.fsdecode(os.fspath(tuning_cache)))
    if allow_tf32:
        opts["allow_tf32"] = bool(allow_tf32)
    if max_memory is not None:
        if isinstance(max_memory, bool) or not isinstance(max_memory, int) or max_memory <= 0:
            raise Error("max_memory: expected a positive number of bytes, got %r" % (max_memory,))
        opts["max_memory"] = max_memory
    if allow_over_memory:
        opts["allow_over_memory"] = True
    return opts


class Plan:
    """A compiled model: the graph, the weights and what the device must offer, for one device.

    Immutable and shareable: create any number of contexts from it (one per thread or per
    inference in flight); its weights are uploaded once per context's device."""

    def __init__(self, data: bytes, summary: str = ""):
        self._bytes = bytes(data)
        self._native = _kiln.Plan.load_memory(self._bytes)
        self.summary = summary

    @property
    def bytes(self) -> bytes:
        """The plan file's bytes (what save() writes)."""
        return self._bytes

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the plan file (through a temporary file: never a truncated plan)."""
        path = os.fspath(path)
        tmp = "%s.tmp%d" % (path, os.getpid())
        try:
            with open(tmp, "wb") as f:
                f.write(self._bytes)
            os.replace(tmp, path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise Error("cannot write plan '%s': %s" % (path, e.strerror or e)) from None

    @property
    def inputs(self) -> List[Dict[str, Any]]:
        """[{name, dtype, shape, min_shape, max_shape}]: shape is the largest one it runs; a
        dynamic plan runs any shape from min_shape to max_shape."""
        return self._native.inputs()

    @property
    def outputs(self) -> List[Dict[str, Any]]:
        """[{name, dtype, shape}] (shapes at the max input shapes)."""
        return self._native.outputs()

    @property
    def target_device(self) -> str:
        return self._native.target_device()

    def inspect(self) -> Dict[str, Any]:
        """`kiln inspect` as data: versions, target, weights, peak memory, dynamic dims, inputs,
        outputs, segments and every node with its backend, kernel and precision."""
        return json.loads(self._native.inspect_json())

    def context(self, device: Optional[str] = None, *, cpu_threads: int = 0, profiling: bool = False) -> "Context":
        """Opens `device` ("auto" when None) for running the plan."""
        return Context(self, device, cpu_threads=cpu_threads, profiling=profiling)

    def __repr__(self):
        return "<kiln.Plan %s, %d bytes>" % (self.summary or self.target_device, len(self._bytes))


class Context:
    """One execution context of a plan on a device: its own activations, the plan's weights.

    run() binds C-contiguous numpy inputs without copying them and releases the GIL while kiln
    runs, so N Python threads on N contexts run in parallel. A context runs one inference at a
    time (calls from several threads take turns); use one context per thread for concurrency."""

    def __init__(self, plan: Plan, device: Optional[str] = None, *, cpu_threads: int = 0, profiling: bool = False):
        if not isinstance(plan, Plan):
            raise Error("Context needs a kiln.Plan")
        try:
            cpu_threads = int(cpu_threads)
        except (TypeError, ValueError):
            raise Error("cpu_threads: expected an int, got %r" % (cpu_threads,)) from None
        self.plan = plan
        self._device = "auto" if device is None else str(device)
        self._native = _kiln.Context(plan._native, self._device, cpu_threads, bool(profiling))
        self._profiling = bool(profiling)
        self._profiler: Optional[Context] = None

    @property
    def device(self) -> str:
        """The device it runs on, e.g. "opencl:0 (pthread-...)"."""
        return self._native.device()

    @staticmethod
    def _feeds(feeds: Mapping[str, Any]) -> Dict[str, np.ndarray]:
        if not isinstance(feeds, Mapping):
            raise Error("inputs: expected a dict {input name: numpy array}, got %s" % type(feeds).__name__)
        return {str(k): _array(v, "input '%s'" % k) for k, v in feeds.items()}

    @staticmethod
    def _select(outputs: Dict[str, np.ndarray], names: Optional[Sequence[str]]) -> Dict[str, np.ndarray]:
        if names is None:
            return outputs
        missing = [n for n in names if n not in outputs]
        if missing:
            raise Error("the plan has no output named '%s' (outputs: %s)" % (missing[0], ", ".join(outputs)))
        return {n: outputs[n] for n in names}

    def run(self, feeds: Mapping[str, Any], output_names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """Runs one inference: {input name: array} -> {output name: array}."""
        return self._select(self._native.run(self._feeds(feeds)), output_names)

    def run_async(self, feeds: Mapping[str, Any],
                  output_names: Optional[Sequence[str]] = None) -> "concurrent.futures.Future[Dict[str, np.ndarray]]":
        """Starts one inference on the context's worker thread; the Future gets the outputs (or kiln.Error).
        The inputs must stay unchanged until it completes."""
        arrays = self._feeds(feeds)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()
        inner: concurrent.futures.Future = concurrent.futures.Future()
        inner.set_running_or_notify_cancel()

        def finish(f):
            try:
                fut.set_result(self._select(f.result(), output_names))
            except BaseException as e:  # noqa: BLE001 - the Future carries it
                fut.set_exception(e)
        inner.add_done_callback(finish)
        self._native.enqueue(arrays, inner)
        return fut

    def profile(self, feeds: Mapping[str, Any], runs: int = 10) -> List[Dict[str, Any]]:
        """Runs `runs` profiled inferences (after one warm-up) and returns one record per node
        and transfer per run: {kind, run, node, name, op, backend, start_ns, end_ns, ms, host_us,
        flops, bytes}. kind is "node", "upload" or "download"."""
        if not isinstance(runs, int) or runs < 1:
            raise Error("runs: expected a positive int, got %r" % (runs,))
        if self._profiling:
            target = self
        else:
            if self._profiler is None:
                self._profiler = Context(self.plan, self._device, profiling=True)
            target = self._profiler
        feeds = self._feeds(feeds)
        target._native.run(feeds)  # warm-up (program builds), not recorded below
        target._native.clear_profile()
        for _ in range(runs):
            target._native.run(feeds)
        return target._native.profile_records()

    def close(self) -> None:
        """Waits for inferences in flight and frees the context (also done when it is collected)."""
        if self._profiler is not None:
            self._profiler.close()
        self._native.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build(model: Any, *, device: str = "auto", precision: str = "fp32", fallback_precision: str = "fp32",
          io_precision: str = "fp32",
          calib: Optional[Iterable[Mapping[str, Any]]] = None, calib_dir: Optional[str] = None,
          shapes: Optional[Mapping[str, Any]] = None, min_shapes: Optional[Mapping[str, Any]] = None,
          max_shapes: Optional[Mapping[str, Any]] = None, layer_precision: Optional[Mapping[str, str]] = None,
          accuracy_budget: Optional[float] = None, calibrator: Optional[str] = None,
          calib_cache: Optional[str] = None, smooth_quant: Optional[float] = None,
          bias_correction: bool = True, accuracy_check: bool = True, fuse: bool = True, partition: str = "device", cpu_nodes: Optional[Sequence[str]] = None,
          transfer_gbps: Optional[float] = None, freeze: Optional[Mapping[str, Any]] = None, tune: bool = False,
          tuning_cache: Optional[str] = None, allow_tf32: bool = False, max_memory: Optional[int] = None,
          allow_over_memory: bool = False, log: Optional[Callable[[str, str], None]] = None) -> Plan:
    """Compiles an ONNX model (a path, bytes or an onnx.ModelProto) into a Plan: `kiln build`'s
    options as keywords. `calib` is an iterable of {input name: array} samples (INT8/FP8
    calibration, the accuracy budget); `shapes` fixes dynamic dims ({"x": (1, 3, 224, 224)} or
    "1x3x224x224"); `fallback_precision="fp16"` runs what INT8/FP8 quantization leaves in float
    (attention, LayerNorm, GELU...) in FP16 (`--fallback-precision`); `io_precision="fp16"` makes
    the plan's float inputs and outputs float16 (`--io-precision`); `min_shapes`/`max_shapes` make a dynamic plan; `tune` times the kernel
    variants on the device (any precision; `tuning_cache` keeps the timings); `allow_tf32` lets
    FP32 Conv/Gemm/MatMul use TF32 tensor cores; `bias_correction=False` keeps
    INT8/FP8 layers' biases as they are (`--no-bias-correction`); `accuracy_check=False` skips
    the checks of calibrated INT8/FP8 builds (`--no-accuracy-check`); `max_memory` (bytes, default the host's memory)
    bounds the plan's peak memory, `allow_over_memory` writes it anyway; `log(level, line)`
    receives the build's report
    (level "info" or "progress")."""
    path, data, base_dir = _model_arg(model)
    try:
        opts = _options(device=device, precision=precision, fallback_precision=fallback_precision,
                        io_precision=io_precision, shapes=shapes,
                        min_shapes=min_shapes,
                        max_shapes=max_shapes, layer_precision=layer_precision, accuracy_budget=accuracy_budget,
                        calibrator=calibrator, calib_dir=calib_dir, calib_cache=calib_cache,
                        smooth_quant=smooth_quant, bias_correction=bias_correction,
                        accuracy_check=accuracy_check, fuse=fuse, partition=partition, cpu_nodes=cpu_nodes,
                        transfer_gbps=transfer_gbps, freeze=freeze, tune=tune, tuning_cache=tuning_cache,
                        allow_tf32=allow_tf32, max_memory=max_memory, allow_over_memory=allow_over_memory)
    except (TypeError, ValueError, AttributeError) as e:  # a keyword of the wrong kind
        raise Error("build options: %s" % e) from None
    if calib is not None and calib_dir is not None:
        raise Error("give calib (samples) or calib_dir (a folder), not both")
    if log is not None and not callable(log):
        raise Error("log: expected a callable(level, line)")
    data_bytes, summary = _kiln.build(path, data, base_dir, opts, _samples(calib, "calib"), log)
    return Plan(data_bytes, summary)


def load(path: Union[str, os.PathLike]) -> Plan:
    """Loads and verifies a plan file written by Plan.save() or `kiln build`."""
    try:
        with open(os.fspath(path), "rb") as f:
            data = f.read()
    except OSError as e:
        raise Error("cannot open plan file '%s': %s" % (os.fspath(path), e.strerror or e)) from None
    except TypeError:
        raise Error("load: expected a path, got %s" % type(path).__name__) from None
    try:
        return Plan(data)
    except Error as e:
        raise Error("plan '%s': %s" % (os.fspath(path), e)) from None


def compare(plan: Plan, reference_model: Union[str, os.PathLike], inputs: Optional[Mapping[str, Any]] = None, *,
            device: Optional[str] = None, per_layer: bool = False) -> Dict[str, Any]:
    """`kiln compare` as data: runs `plan` on `device` and an FP32 cpu plan of the model it was
    built from on the same inputs (random for those not given) and returns
    {"device", "outputs": [{tensor, max_abs, mean_abs, max_rel, rel_l2, cosine}], and with
    per_layer "layers" (worst relative L2 error first, each with its plan node), "unmatched",
    "node_outputs", "plan_values" and "reference_values" (the compared tensors)}."""
    if not isinstance(plan, Plan):
        raise Error("compare: plan must be a kiln.Plan")
    if not isinstance(reference_model, (str, os.PathLike)):
        raise Error("compare: reference_model must be the path of the ONNX model")
    feeds = Context._feeds(inputs) if inputs is not None else None
    return _kiln.compare(plan.bytes, os.fspath(reference_model), feeds, "auto" if device is None else str(device),
                         bool(per_layer))


def sweep(model: Union[str, os.PathLike], *, calib: Optional[Iterable[Mapping[str, Any]]] = None,
          calib_dir: Optional[str] = None, eval: Optional[Iterable[Mapping[str, Any]]] = None,
          eval_dir: Optional[str] = None, labels: Optional[Sequence[int]] = None, device: str = "auto",
          precisions: Sequence[str] = ("fp32", "fp16", "int8", "fp8"), shapes: Optional[Mapping[str, Any]] = None,
          calibrator: str = "entropy", seconds: float = 1.0, fallback_precision: str = "fp32",
          log: Optional[Callable[[str, str], None]] = None) -> Dict[str, Any]:
    """`kiln sweep` as data: the model built in each precision, one row each
    {precision, available, reason, plan_bytes, latency_ms, per_second, max_rel_l2, min_cosine,
    and with labels top1, top1_correct, top1_rows}, plus "device" and "samples". `fallback_precision`
    is build's, for the int8/fp8 rows."""
    if not isinstance(model, (str, os.PathLike)):
        raise Error("sweep: model must be the path of the ONNX model")
    if (calib is None) == (calib_dir is None):
        raise Error("sweep needs calibration samples: calib (an iterable) or calib_dir (a folder), one of them")
    try:
        opts = _options(device=device, shapes=shapes, calibrator=calibrator, calib_dir=calib_dir,
                        fallback_precision=fallback_precision)
    except (TypeError, ValueError, AttributeError) as e:
        raise Error("sweep options: %s" % e) from None
    label_list: List[int] = []
    if labels is not None:
        arr = np.asarray(labels)
        if arr.dtype.kind not in "iu":
            raise Error("labels: expected integer class labels, got %s" % arr.dtype)
        label_list = [int(x) for x in arr.reshape(-1)]
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise Error("seconds: expected a number") from None
    return _kiln.sweep(os.fspath(model), opts, _samples(calib, "calib"), [str(p) for p in precisions],
                       _samples(eval, "eval"), None if eval_dir is None else os.fspath(eval_dir), label_list, seconds,
                       log)


from .session import InferenceSession  # noqa: E402  (needs the names above)
