"""The silero voice-activity detector, a real pretrained model with LSTMs inside If branches, run
by kiln against ONNX Runtime on real speech.

Model: silero_vad/data/silero_vad.onnx from the `silero-vad` wheel on PyPI (version pinned in
scripts/setup_python.sh, installed with --no-deps: only the file is read, torch is never
installed; MIT licence). Its graph is If(sr == 16000) over a 16 kHz and an 8 kHz network, each an
STFT convolution, a conv encoder and an LSTM decoder, with more Ifs nested on shapes.
Audio: the spoken-word WAVs Debian's alsa-utils ships in /usr/share/sounds/alsa (48 kHz mono
speech, "Front center" etc.) and its white-noise WAV, resampled to 16 and 8 kHz, between stretches
of near-silence.

Two plans per device, each streamed chunk by chunk through the C API (libkiln_runtime via
ctypes), the LSTM state carried from chunk to chunk, against ONNX Runtime streamed the same way:
- sr frozen to 16000 (--freeze): the condition folds, the If is inlined (no subgraph left) and on
  an OpenCL device the LSTM runs there; 512-sample chunks (plus 64 samples of context).
- sr left as an input: the If runs its branches at run time on the CPU; 256-sample chunks (+32), the
  8 kHz audio at sr=8000 and some chunks at sr=16000 (the other branch).
Every chunk's speech probability and the final state must match ONNX Runtime (1e-4), and so must
the speech/non-speech decision (p > 0.5) of every chunk; the speech must be detected.

usage: silero_vad_test.py KILN LIBKILN_RUNTIME WORKDIR DEVICE
"""
import ctypes
import importlib.util
import os
import subprocess
import sys
import wave

import numpy as np
import onnxruntime as ort

KILN, LIB, WORK, DEVICE = sys.argv[1:5]
os.makedirs(WORK, exist_ok=True)
SOUNDS = "/usr/share/sounds/alsa"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def model_path():
    # find_spec locates the installed package without importing it (its __init__ imports torch).
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("silero_vad is not installed in this python (run scripts/setup_python.sh)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "silero_vad.onnx")


def read_wav(name):
    with wave.open(os.path.join(SOUNDS, name)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 48000, name
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def audio(rate):
    """~6 s at `rate`: silence, two spoken phrases, white noise, silence, a third phrase."""
    rng = np.random.default_rng(5)
    quiet = lambda s: (rng.standard_normal(int(48000 * s)) * 1e-3).astype(np.float32)  # noqa: E731
    x48 = np.concatenate([quiet(0.5), read_wav("Front_Center.wav"), quiet(0.3), read_wav("Rear_Left.wav"),
                          0.3 * read_wav("Noise.wav"), quiet(0.5), read_wav("Front_Right.wav"), quiet(0.3)])
    k = 48000 // rate  # box-filter decimation: crude, but the same signal goes to both runtimes
    x = x48[: len(x48) // k * k].reshape(-1, k).mean(axis=1)
    return x.astype(np.float32)


class Kiln:
    """One plan and context of libkiln_runtime, through its C API."""

    def __init__(self, lib, plan, device):
        self.lib = lib
        self.plan, self.ctx = ctypes.c_void_p(), ctypes.c_void_p()
        self._ok(lib.kiln_plan_load_file(plan.encode(), ctypes.byref(self.plan)), "loading " + plan)
        self._ok(lib.kiln_context_create(self.plan, device.encode(), ctypes.byref(self.ctx)), "creating a context")

    def _ok(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.kiln_last_error().decode()}")

    def run(self, feeds, outputs):
        keep = []
        for name, arr in feeds.items():
            arr = np.array(arr, order="C")  # (np.ascontiguousarray makes scalars 1-D)
            keep.append(arr)
            dtype = {np.float32: 1, np.int64: 7}[arr.dtype.type]
            dims = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
            self._ok(self.lib.kiln_context_bind_input(self.ctx, name.encode(), dtype, dims, arr.ndim,
                                                      arr.ctypes.data_as(ctypes.c_void_p), arr.nbytes), "binding " + name)
        result = {}
        for name, shape in outputs.items():
            result[name] = np.zeros(shape, dtype=np.float32)
            self._ok(self.lib.kiln_context_bind_output(self.ctx, name.encode(),
                                                       result[name].ctypes.data_as(ctypes.c_void_p),
                                                       result[name].nbytes), "binding " + name)
        self._ok(self.lib.kiln_context_run(self.ctx), "running")
        return result

    def close(self):
        self.lib.kiln_context_release(self.ctx)
        self.lib.kiln_plan_release(self.plan)


def load_lib():
    lib = ctypes.CDLL(LIB)
    lib.kiln_last_error.restype = ctypes.c_char_p
    lib.kiln_plan_load_file.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.kiln_context_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.kiln_context_bind_input.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                            ctypes.POINTER(ctypes.c_int64), ctypes.c_int32, ctypes.c_void_p,
                                            ctypes.c_size_t]
    lib.kiln_context_bind_output.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.kiln_context_run.argtypes = [ctypes.c_void_p]
    lib.kiln_context_release.argtypes = [ctypes.c_void_p]
    lib.kiln_plan_release.argtypes = [ctypes.c_void_p]
    return lib


def stream(run_chunk, x, chunk, sr_of):
    """Feeds x chunk by chunk as silero's own wrapper does: each chunk preceded by the last 64
    samples of the one before (32 at 8 kHz; the model's input is that much longer than a chunk),
    the LSTM state carried along. Returns every chunk's probability and the final state."""
    state = np.zeros((2, 1, 128), dtype=np.float32)
    probs = []
    for i in range(len(x) // chunk):
        ctx = 64 if chunk == 512 else 32
        prev = x[i * chunk - ctx:i * chunk] if i else np.zeros(ctx, dtype=np.float32)
        inp = np.concatenate([prev, x[i * chunk:(i + 1) * chunk]])[None, :]
        p, state = run_chunk(inp, state, np.array(sr_of(i), dtype=np.int64))
        probs.append(float(p.reshape(-1)[0]))
    return np.array(probs), state


def compare_streams(tag, kiln_run, ort_run, x, chunk, sr_of, expect_speech):
    got, got_state = stream(kiln_run, x, chunk, sr_of)
    want, want_state = stream(ort_run, x, chunk, sr_of)
    err = float(np.max(np.abs(got - want)))
    check(err < 1e-4, f"{tag}: {len(got)} chunks, max |p_kiln - p_onnxruntime| = {err:.2e}")
    serr = float(np.max(np.abs(got_state - want_state)))
    check(serr < 1e-4, f"{tag}: final LSTM state max |diff| = {serr:.2e}")
    same = int(np.sum((got > 0.5) == (want > 0.5)))
    check(same == len(got), f"{tag}: speech decisions agree on {same} of {len(got)} chunks")
    if expect_speech:
        check(int(np.sum(got > 0.5)) >= 5, f"{tag}: speech found in {int(np.sum(got > 0.5))} chunks "
                                           f"(onnxruntime: {int(np.sum(want > 0.5))})")


def main():
    model = model_path()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])

    def ort_run(inp, state, sr):
        out, state_n = sess.run(None, {"input": inp, "state": state, "sr": sr})
        return out, state_n

    lib = load_lib()
    x16, x8 = audio(16000), audio(8000)

    # sr frozen to 16000: the If folds away.
    sr16 = os.path.join(WORK, "sr16000.npy")
    np.save(sr16, np.array(16000, dtype=np.int64))
    frozen = os.path.join(WORK, f"silero_frozen_{DEVICE}.plan")
    subprocess.run([KILN, "build", model, "-o", frozen, "--device", DEVICE, "--shapes", "input=1x576",
                    "--shapes", "state=2x1x128", "--freeze", "sr=" + sr16], check=True, capture_output=True)
    text = subprocess.run([KILN, "inspect", frozen], check=True, capture_output=True, text=True).stdout
    check("op=If" not in text and "subgraphs" not in text, "frozen sr: the If is inlined, no subgraph left")
    if DEVICE != "cpu":
        check("op=LSTM  backend=opencl" in text, "frozen sr: the LSTM runs on the OpenCL device")
    k = Kiln(lib, frozen, DEVICE)
    outs = {"output": (1, 1), "stateN": (2, 1, 128)}

    def kiln_frozen(inp, state, sr):
        r = k.run({"input": inp, "state": state}, outs)
        return r["output"], r["stateN"]

    compare_streams("16 kHz, sr frozen", kiln_frozen, ort_run, x16, 512, lambda i: 16000, True)
    k.close()

    # sr an input: the If picks its branch at run time.
    dynamic = os.path.join(WORK, f"silero_dynamic_{DEVICE}.plan")
    subprocess.run([KILN, "build", model, "-o", dynamic, "--device", DEVICE, "--shapes", "input=1x288",
                    "--shapes", "state=2x1x128"], check=True, capture_output=True)
    text = subprocess.run([KILN, "inspect", dynamic], check=True, capture_output=True, text=True).stdout
    check("op=If" in text and "subgraphs (" in text, "sr an input: the If runs its branches as subgraphs")
    k = Kiln(lib, dynamic, DEVICE)

    def kiln_dynamic(inp, state, sr):
        r = k.run({"input": inp, "state": state, "sr": sr}, outs)
        return r["output"], r["stateN"]

    compare_streams("8 kHz, If at run time", kiln_dynamic, ort_run, x8, 256, lambda i: 8000, True)
    compare_streams("sr switching per chunk, If at run time", kiln_dynamic, ort_run, x16[:256 * 40], 256,
                    lambda i: 16000 if i % 3 else 8000, False)
    k.close()
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
