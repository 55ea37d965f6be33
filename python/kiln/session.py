"""kiln.InferenceSession: onnxruntime.InferenceSession's surface over kiln, so that an
onnxruntime user switches by changing one import.

    import kiln as ort          # was: import onnxruntime as ort
    s = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    y, = s.run(None, {s.get_inputs()[0].name: x})

The model is compiled into a kiln plan on first use and the plan cached on disk (in
$KILN_CACHE_DIR/plans, else $XDG_CACHE_HOME/kiln/plans, else ~/.cache/kiln/plans) under the
SHA-256 of the model bytes, the build options and the device, so the next session of the same
model starts without compiling. A model with dynamic input dims (and no shapes given) is built
on the first run() for the shapes it is fed, one plan per distinct set of input shapes.

onnxruntime options (what kiln does with them):

=========================================  ===========================================================
providers / provider_options               "KilnExecutionProvider" (options: device, precision, shapes,
                                           min_shapes, max_shapes, calib, calibrator, accuracy_budget,
                                           layer_precision: kiln.build's keywords); "CPUExecutionProvider"
                                           -> device "cpu"; "CUDAExecutionProvider",
                                           "TensorrtExecutionProvider", "ROCMExecutionProvider",
                                           "OpenVINOExecutionProvider", "DmlExecutionProvider" -> device
                                           "auto" (kiln's OpenCL GPU path). The first entry decides;
                                           others are fallbacks kiln does not need (the cpu backend runs
                                           every op). Other names: refused (kiln.Error).
SessionOptions.intra_op_num_threads        honoured: threads per CPU kernel (0: kiln's default)
SessionOptions.graph_optimization_level    honoured: ORT_DISABLE_ALL builds without fusion; any other
                                           level builds with kiln's full pipeline
SessionOptions.enable_profiling            honoured: end_profiling() writes a Chrome trace JSON of the
(+ profile_file_prefix)                    runs and returns its path
SessionOptions.optimized_model_filepath    refused: kiln writes plans, not ONNX (use kiln.build().save())
SessionOptions.inter_op_num_threads,       accepted and ignored: kiln runs one inference per context;
execution_mode, log_severity_level,        use run_async or several sessions for concurrency
log_verbosity_level, enable_mem_pattern,
enable_cpu_mem_arena, session config
RunOptions (run's run_options)             accepted and ignored
=========================================  ===========================================================
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import Error, Plan, build, load

_GPU_PROVIDERS = {"CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider",
                  "OpenVINOExecutionProvider", "DmlExecutionProvider", "MIGraphXExecutionProvider"}
_BUILD_KEYS = {"device", "precision", "shapes", "min_shapes", "max_shapes", "calib", "calibrator", "accuracy_budget",
               "layer_precision", "calib_dir", "smooth_quant", "partition", "cpu_nodes"}
_NUMPY_TO_ORT = {"float32": "tensor(float)", "float16": "tensor(float16)", "float64": "tensor(double)",
                 "int8": "tensor(int8)", "uint8": "tensor(uint8)", "int16": "tensor(int16)", "uint16": "tensor(uint16)",
                 "int32": "tensor(int32)", "uint32": "tensor(uint32)", "int64": "tensor(int64)",
                 "uint64": "tensor(uint64)", "bool": "tensor(bool)"}


class NodeArg:
    """onnxruntime.NodeArg: name, type ("tensor(float)"...), shape (ints; a dynamic dim of a
    model not built yet is its dim_param name or None)."""

    def __init__(self, name: str, type: str, shape: List[Any]):
        self.name, self.type, self.shape = name, type, shape

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)


def _cache_dir() -> str:
    base = os.environ.get("KILN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "kiln")
    return os.path.join(base, "plans")


def _provider(providers, provider_options) -> Tuple[str, Dict[str, Any]]:
    if providers is None:
        return "auto", {}
    if isinstance(providers, str):
        providers = [providers]
    providers = list(providers)
    if not providers:
        return "auto", {}
    first = providers[0]
    options: Dict[str, Any] = {}
    if isinstance(first, (tuple, list)):
        first, options = first[0], dict(first[1])
    elif provider_options:
        options = dict(provider_options[0])
    if first == "KilnExecutionProvider":
        unknown = set(options) - _BUILD_KEYS
        if unknown:
            raise Error("KilnExecutionProvider: unknown option(s) %s (known: %s)" %
                        (", ".join(sorted(unknown)), ", ".join(sorted(_BUILD_KEYS))))
        return str(options.get("device", "auto")), options
    if first == "CPUExecutionProvider":
        return "cpu", {}
    if first in _GPU_PROVIDERS:
        return "auto", {}
    raise Error("provider '%s' is not one kiln offers (KilnExecutionProvider, CPUExecutionProvider, or a GPU "
                "provider name, which selects kiln's OpenCL device)" % first)


class InferenceSession:
    """onnxruntime.InferenceSession over a kiln plan (see the module docstring for the options)."""

    def __init__(self, path_or_bytes: Any, sess_options: Any = None, providers: Optional[Sequence[Any]] = None,
                 provider_options: Optional[Sequence[Mapping[str, Any]]] = None, **kwargs: Any):
        if isinstance(path_or_bytes, (str, os.PathLike)):
            self._model_path = os.fspath(path_or_bytes)
            try:
                with open(self._model_path, "rb") as f:
                    self._model_bytes = f.read()
            except OSError as e:
                raise Error("cannot open model '%s': %s" % (self._model_path, e.strerror or e)) from None
        elif isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            self._model_path, self._model_bytes = None, bytes(path_or_bytes)
        elif hasattr(path_or_bytes, "SerializeToString"):
            self._model_path, self._model_bytes = None, path_or_bytes.SerializeToString()
        else:
            raise Error("InferenceSession: expected a model path, bytes or onnx.ModelProto")
        self._device, self._build_opts = _provider(providers, provider_options)
        self._build_opts = {k: v for k, v in self._build_opts.items() if k != "device"}
        if "calib" in self._build_opts:  # hashed and then built from: an iterator would run dry
            self._build_opts["calib"] = list(self._build_opts["calib"])
        self._cpu_threads, self._profiling, self._profile_prefix = 0, False, "kiln_profile"
        if sess_options is not None:
            self._session_options(sess_options)
        self._lock = threading.Lock()
        self._plans: Dict[Any, Plan] = {}
        self._contexts = threading.local()
        self._all_contexts: List[Any] = []
        self._records: List[Dict[str, Any]] = []
        self._static = None  # the plan when the model builds without knowing the inputs' shapes
        try:
            self._static = self._plan(None)
        except Error as e:
            if "dynamic dimension" not in str(e) and "has no shape" not in str(e):
                raise
        self._providers = ["KilnExecutionProvider"]

    # -- options -----------------------------------------------------------------------------
    def _session_options(self, so: Any) -> None:
        if getattr(so, "optimized_model_filepath", ""):
            raise Error("SessionOptions.optimized_model_filepath is not supported: kiln writes plans, not ONNX "
                        "(kiln.build(model).save(path))")
        threads = getattr(so, "intra_op_num_threads", 0) or 0
        self._cpu_threads = int(threads)
        level = getattr(so, "graph_optimization_level", None)
        if level is not None and (getattr(level, "name", None) == "ORT_DISABLE_ALL" or level == 0):
            self._build_opts["fuse"] = False
        self._profiling = bool(getattr(so, "enable_profiling", False))
        self._profile_prefix = getattr(so, "profile_file_prefix", "") or "kiln_profile"

    # -- plans -----------------------------------------------------------------------------------
    def _key(self, shapes: Optional[Dict[str, Tuple[int, ...]]]) -> str:
        h = hashlib.sha256()
        h.update(self._model_bytes)
        opts = {k: v for k, v in self._build_opts.items() if k != "calib"}
        h.update(json.dumps({"opts": opts, "device": self._device, "shapes": shapes}, sort_keys=True,
                            default=str).encode())
        if "calib" in self._build_opts:  # samples: their bytes
            for s in self._build_opts["calib"]:
                for k in sorted(s):
                    a = np.ascontiguousarray(s[k])
                    h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
        return h.hexdigest()

    def _plan(self, shapes: Optional[Dict[str, Tuple[int, ...]]]) -> Plan:
        key = self._key(shapes)
        with self._lock:
            if key in self._plans:
                return self._plans[key]
        path = os.path.join(_cache_dir(), key + ".plan")
        plan = None
        if os.path.exists(path):
            try:
                plan = load(path)
            except Error:
                plan = None  # a stale or damaged cache entry: rebuild it
        if plan is None:
            opts = dict(self._build_opts)
            if shapes:
                opts["shapes"] = {**{k: list(v) for k, v in shapes.items()}, **dict(opts.get("shapes") or {})}
            if "calib" in opts:
                opts["calib"] = list(opts["calib"])
            model = self._model_path if self._model_path is not None else self._model_bytes
            plan = build(model, device=self._device, **opts)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                plan.save(path)
            except (OSError, Error):
                pass  # no cache: still a working session
        with self._lock:
            self._plans.setdefault(key, plan)
            return self._plans[key]

    def _context(self, plan: Plan):
        # One context per thread and plan, so threads sharing a session run in parallel.
        ctxs = getattr(self._contexts, "by_plan", None)
        if ctxs is None:
            ctxs = self._contexts.by_plan = {}
        ctx = ctxs.get(id(plan))
        if ctx is None:
            ctx = plan.context(self._device, cpu_threads=self._cpu_threads, profiling=self._profiling)
            ctxs[id(plan)] = ctx
            with self._lock:
                self._all_contexts.append(ctx)
        return ctx

    def _plan_for(self, feeds: Mapping[str, Any]) -> Plan:
        if self._static is not None:
            return self._static
        shapes = {str(k): tuple(int(d) for d in np.shape(v)) for k, v in feeds.items()}
        return self._plan(shapes)

    # -- onnxruntime's surface ---------------------------------------------------------------------
    def _described(self) -> Plan:
        if self._static is None:
            raise Error("the model has dynamic input dims: its inputs are known after the first run() (or give "
                        "shapes/min_shapes/max_shapes through KilnExecutionProvider's options)")
        return self._static

    def get_inputs(self) -> List[NodeArg]:
        return [NodeArg(i["name"], _NUMPY_TO_ORT.get(i["dtype"], i["dtype"]), list(i["shape"]))
                for i in self._described().inputs]

    def get_outputs(self) -> List[NodeArg]:
        return [NodeArg(o["name"], _NUMPY_TO_ORT.get(o["dtype"], o["dtype"]), list(o["shape"]))
                for o in self._described().outputs]

    def get_overridable_initializers(self) -> List[NodeArg]:
        return []

    def get_providers(self) -> List[str]:
        return list(self._providers)

    def get_provider_options(self) -> Dict[str, Dict[str, str]]:
        return {"KilnExecutionProvider": {"device": self._device}}

    def get_session_options(self):
        return None

    def get_modelmeta(self):
        raise Error("get_modelmeta is not supported by kiln.InferenceSession")

    def _outputs(self, result: Dict[str, np.ndarray], output_names: Optional[Sequence[str]]) -> List[np.ndarray]:
        names = list(result) if not output_names else list(output_names)
        missing = [n for n in names if n not in result]
        if missing:
            raise Error("the model has no output named '%s' (outputs: %s)" % (missing[0], ", ".join(result)))
        return [result[n] for n in names]

    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any],
            run_options: Any = None) -> List[np.ndarray]:
        """Runs the model: outputs in `output_names` order (all, in the model's order, for None)."""
        if not isinstance(input_feed, Mapping):
            raise Error("input_feed: expected a dict {input name: numpy array}")
        plan = self._plan_for(input_feed)
        ctx = self._context(plan)
        result = ctx.run(input_feed)
        if self._profiling:
            self._records.extend(ctx._native.profile_records())
            ctx._native.clear_profile()
        return self._outputs(result, output_names)

    def run_async(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any],
                  callback: Callable[[Optional[List[np.ndarray]], Any, str], None], user_data: Any = None,
                  run_options: Any = None) -> None:
        """onnxruntime's run_async: `callback(outputs, user_data, error_message)` is called from a
        kiln worker thread when the inference completes (outputs None and a message on failure)."""
        if not callable(callback):
            raise Error("run_async needs a callback(outputs, user_data, error)")
        # Its own context per call in flight would be costly; a private context per session,
        # serialized by the context itself, keeps the inputs' buffers valid until it ran.
        plan = self._plan_for(input_feed)
        with self._lock:
            if not hasattr(self, "_async_ctx") or self._async_ctx.plan is not plan:
                self._async_ctx = plan.context(self._device, cpu_threads=self._cpu_threads)
                self._all_contexts.append(self._async_ctx)
            ctx = self._async_ctx
        fut = ctx.run_async(input_feed)

        def done(f):
            try:
                outs = self._outputs(f.result(), output_names)
                callback(outs, user_data, "")
            except Exception as e:  # noqa: BLE001 - reported through the callback
                callback(None, user_data, str(e))
        fut.add_done_callback(done)

    def end_profiling(self) -> str:
        """Writes the profiled runs as a Chrome trace (chrome://tracing, ui.perfetto.dev) and returns its path."""
        if not self._profiling:
            return ""
        path = "%s_%d.json" % (self._profile_prefix, os.getpid())
        t0 = min((r["start_ns"] for r in self._records), default=0)
        events = [{"name": r["name"], "cat": r["op"] or r["kind"], "ph": "X", "ts": (r["start_ns"] - t0) / 1e3,
                   "dur": (r["end_ns"] - r["start_ns"]) / 1e3, "pid": 1, "tid": 2 if r["backend"] == "opencl" else 1,
                   "args": {"run": r["run"]}} for r in self._records]
        with open(path, "w") as f:
            json.dump(events, f)
        self._records = []
        return path
