"""Detection + embedding over a stream of frames, committed to the index in batches."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .frames import Frame
from .metadata import FrameResult
from .records import AddReport, DimensionError
from .staged import can_stage, on_accelerator, staged_outputs

# commit(results, skipped) stores one batch durably and returns the number of people it added
Commit = Callable[[Sequence[FrameResult], Sequence[tuple[str, str]]], int]


def frame_result(out: dict, frame: Frame, dim: int, camera: str | None, fps: float | None) -> FrameResult:
    """One frame's searcher output as stored; ValueError if it is malformed.

    A searcher giving embeddings of another size than ``dim`` is an error (the wrong model for this
    index), not a skipped frame.
    """
    boxes = np.asarray(out["boxes"], np.float32).reshape(-1, 4)
    scores = np.asarray(out["scores"], np.float32).reshape(-1)
    emb = np.asarray(out["embeddings"], np.float32)
    emb = emb.reshape(len(boxes), -1) if emb.size else np.zeros((len(boxes), dim), np.float32)
    if len(scores) != len(boxes) or emb.shape[0] != len(boxes):
        raise ValueError(f"the searcher returned {len(boxes)} boxes, {len(scores)} scores and "
                         f"{emb.shape[0]} embeddings for {frame.source}")
    if emb.shape[1] != dim:
        raise DimensionError(f"the searcher gives {emb.shape[1]}-d embeddings but the index holds {dim}-d ones: "
                             "use the model the index was built with")
    height, width = frame.rgb.shape[:2]
    return FrameResult(frame.source, frame.kind, frame.frame, frame.timestamp, width, height,
                       boxes, scores, emb, camera, fps)


def outputs(frames: Iterable[Frame], searcher, staged: bool | None = None) -> Iterator[tuple[Frame, Any]]:
    """(frame, searcher output, or None if unreadable, or the ValueError the searcher raised on it).
    ``staged``: decoding, detection and embedding overlapped on threads, embeddings batched across
    frames (``staged.staged_outputs``). Default: only when the embedder runs on an accelerator (CPU
    detection then overlaps GPU embedding); on CPU cores the stages share the same cores and never
    measured faster (benchmarks/ingest.py on 2 cores: 103 vs 145 ms per frame with a PyTorch
    embedder, 84 vs 84 with the onnxruntime one)."""
    if staged is None:
        staged = can_stage(searcher) and on_accelerator(searcher)
    if staged:
        if not can_stage(searcher):
            raise ValueError(f"{type(searcher).__name__} has no separate detect / crops / embed steps to stage")
        yield from staged_outputs(frames, searcher)
        return
    for frame in frames:
        if frame.rgb is None:
            yield frame, None
            continue
        try:
            out = searcher(frame.rgb)
        except DimensionError:
            raise
        except ValueError as err:
            yield frame, err
        else:
            yield frame, out


def classify(frame: Frame, out: Any, dim: int, camera: str | None, fps: float | None
             ) -> FrameResult | tuple[str, str]:
    """A frame's output (from ``outputs``) as a FrameResult to store, or (source, reason) to skip it.
    DimensionError (the wrong model for the index) is raised."""
    if out is None:
        return frame.source, frame.error or "unreadable"
    if isinstance(out, ValueError):
        return frame.source, f"searcher failed on {_describe(frame)}: {out}"
    try:
        result = frame_result(out, frame, dim, camera, fps)
    except DimensionError:
        raise
    except ValueError as err:
        return frame.source, f"searcher failed on {_describe(frame)}: {err}"
    if not np.isfinite(result.embeddings).all():
        return frame.source, f"non-finite embeddings for {_describe(frame)}"
    return result


def _describe(frame: Frame) -> str:
    return frame.source if frame.kind == "image" else f"{frame.source} frame {frame.frame}"


def ingest(frames: Iterable[Frame], searcher, dim: int, commit: Commit, *, camera: str | None = None,
           fps: float | None = None, commit_every: int = 32, bar: Any = None,
           staged: bool | None = None) -> AddReport:
    """Detect and embed every frame, committing every ``commit_every`` frames (a kill loses at most
    one batch, which a rerun redoes). Unreadable images, and frames the searcher rejects with a
    ValueError, are skipped and reported, never fatal. ``staged``: see ``outputs``.
    """
    if commit_every < 1:
        raise ValueError(f"commit_every must be >= 1, got {commit_every}")
    report = AddReport()
    results: list[FrameResult] = []
    skipped: list[tuple[str, str]] = []

    def flush() -> None:
        if results or skipped:
            report.people += commit(results, skipped)
            report.images += len(results)
            report.skipped += skipped
            results.clear()
            skipped.clear()

    for frame, out in outputs(frames, searcher, staged):
        kept = classify(frame, out, dim, camera, fps)
        (results if isinstance(kept, FrameResult) else skipped).append(kept)
        if bar is not None:
            bar.update(1)
        if len(results) + len(skipped) >= commit_every:
            flush()
    flush()
    return report
