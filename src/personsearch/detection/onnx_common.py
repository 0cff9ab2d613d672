"""What the ONNX detectors share: the input check and the onnxruntime session."""

from __future__ import annotations

import numpy as np


def as_rgb_uint8(image) -> np.ndarray:
    """A contiguous RGB uint8 (H, W, 3) array from such an array or a PIL image; ValueError saying what is wrong."""
    from PIL import Image

    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array or PIL.Image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB HxWx3, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 RGB HxWx3, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image is too small: shape {image.shape}")
    return np.ascontiguousarray(image)


def cpu_session(path, threads: int | None):
    """An onnxruntime CPU session on ``path`` with ``threads`` intra-op threads (None: its default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # no busy-waiting between runs: ingest overlaps detection with embedding on the same few cores,
    # where spinning onnxruntime threads would take the embedder's CPU time
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
