"""Ingest with decoding, detection and embedding overlapped, and embedding batched across frames.

Three stages, each on its own thread, joined by short queues (frame order is kept):

1. **decode**: the frame source (``frames.video_frames`` / ``image_frames``; OpenCV and PIL release
   the GIL while they decode);
2. **detect**: ``searcher.detect(rgb)`` (onnxruntime releases the GIL) and the crops of its boxes;
3. **embed** (the caller's thread): the crops of several frames, up to ``batch_people``, in one
   ``searcher.embed`` call (torch releases the GIL).

So the detector of frame t+1 runs while the embedder works on frame t, and the embedder sees
larger batches: the shape for a GPU embedder fed by CPU decoding and detection. On a few CPU cores
the stages share the same cores and never measured faster (145 vs 103 ms per vtest frame on 2 cores
with a PyTorch embedder, 84 vs 84 with the onnxruntime one), so ``ingest.outputs`` stages only when
the embedder is on an accelerator. Any
searcher with ``detect``, ``crops`` and ``embed`` (a ``TwoStepSearcher``) can be staged.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator

import numpy as np

from .frames import Frame

_END = object()
DEPTH = 4  # frames waiting between two stages


def can_stage(searcher: Any) -> bool:
    """Whether ``searcher`` exposes the separate detect / crops / embed steps."""
    return all(callable(getattr(searcher, name, None)) for name in ("detect", "crops", "embed"))


def on_accelerator(searcher: Any) -> bool:
    """Whether the searcher's embedder has its weights on a GPU (or another non-CPU device)."""
    embedder = getattr(searcher, "embedder", None)
    parameter = next(iter(embedder.parameters()), None) if hasattr(embedder, "parameters") else None
    return parameter is not None and parameter.device.type != "cpu"


class _Failure:
    """An exception raised in a stage's thread, handed on to be raised in the caller's."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(out: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set meanwhile; False if it was not put."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(source: queue.Queue, stop: threading.Event) -> Any:
    while True:
        try:
            return source.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END


def _decode(frames: Iterable[Frame], out: queue.Queue, stop: threading.Event) -> None:
    try:
        for frame in frames:
            if not _put(out, frame, stop):
                return
    except BaseException as err:  # noqa: BLE001 - re-raised by the caller
        _put(out, _Failure(err), stop)
        return
    _put(out, _END, stop)


def _detect(searcher, source: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
    while True:
        frame = _get(source, stop)
        if frame is _END or isinstance(frame, _Failure):
            _put(out, frame, stop)
            return
        item: tuple = (frame, None, None)
        if frame.rgb is not None:
            try:
                found = np.asarray(searcher.detect(frame.rgb), np.float32).reshape(-1, 5)
                item = (frame, found, searcher.crops(frame.rgb, found[:, :4]) if len(found) else None)
            except ValueError as err:  # the searcher refuses this frame: reported as a skip
                item = (frame, err, None)
            except BaseException as err:  # noqa: BLE001 - re-raised by the caller
                _put(out, _Failure(err), stop)
                return
        if not _put(out, item, stop):
            return


def staged_outputs(frames: Iterable[Frame], searcher, batch_people: int = 32
                   ) -> Iterator[tuple[Frame, dict[str, np.ndarray] | ValueError | None]]:
    """(frame, ``{"boxes", "scores", "embeddings"}``) for every frame, in order; the output is None
    for an unreadable frame (``frame.rgb`` None) and the ValueError for a frame the searcher refused.
    Exceptions of any other kind in a stage are raised here; leaving the loop early stops the stages."""
    import torch

    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(DEPTH)
    detected: queue.Queue = queue.Queue(DEPTH)
    threads = [threading.Thread(target=_decode, args=(frames, decoded, stop), daemon=True, name="ingest-decode"),
               threading.Thread(target=_detect, args=(searcher, decoded, detected, stop), daemon=True,
                                name="ingest-detect")]
    for thread in threads:
        thread.start()
    try:
        ended = False
        while not ended:
            batch = [detected.get()]
            people = _count(batch[0])
            while people < batch_people:  # more frames already detected join the batch
                try:
                    item = detected.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                people += _count(item)
            ended = batch[-1] is _END or isinstance(batch[-1], _Failure)
            ready = [item for item in batch if isinstance(item, tuple)]
            crops = [item[2] for item in ready if item[2] is not None]
            embeddings = searcher.embed(torch.cat(crops)) if crops else None
            offset = 0
            for frame, found, _ in ready:
                if found is None or isinstance(found, ValueError):
                    yield frame, found
                    continue
                emb = embeddings[offset:offset + len(found)] if len(found) else np.zeros((0, searcher.dim), np.float32)
                offset += len(found)
                yield frame, {"boxes": found[:, :4], "scores": found[:, 4], "embeddings": emb}
            if isinstance(batch[-1], _Failure):
                raise batch[-1].error
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def _count(item: Any) -> int:
    return len(item[1]) if isinstance(item, tuple) and isinstance(item[1], np.ndarray) else 0


__all__ = ["can_stage", "on_accelerator", "staged_outputs"]
