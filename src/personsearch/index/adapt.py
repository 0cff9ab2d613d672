"""``personsearch adapt``: tune the pretrained embedder on an index's own footage, then re-embed it.

1. Tracklets (``tracklets.link_tracklets``) over the indexed frames of every video: the same person
   in consecutive indexed frames, kept only where unambiguous. Their crops, labelled by tracklet,
   are the training set (positives: one tracklet; negatives: the others, including the other people
   of the same frames). No labels, no other data.
2. The pretrained pipeline's zero-shot embedder is tuned on them (``methods.tracklet_finetune``);
   its weights go to ``INDEX/adapt/embedder-HASH.pt`` and the index's model becomes
   ``pretrained@...+weights=adapt/embedder-HASH.pt`` (read inside the index: it can be moved whole).
3. Every indexed person is embedded again with the tuned model (boxes kept, nothing re-detected),
   per source into ``INDEX/adapt/``, then swapped in with the new model in one SQLite transaction;
   the vector file is rebuilt. A killed run resumes: training from its last state, re-embedding from
   the last finished source; until the swap the index stays as it was and answers queries.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..utils.files import atomic_write_bytes, atomic_write_text
from . import metadata
from .frames import read_source, video_frames
from .model import load_model, resolved_spec
from .store import PersonIndex
from .writing import VECTORS_NAME

WORK = "adapt"
Progress = Callable[[str, int, int], None]  # (stage, done, total): "crops", "training", "re-embedding"
ROWS = ("SELECT people.id, sources.id, sources.path, sources.kind, frames.frame, people.x1, people.y1, "
        "people.x2, people.y2 FROM people JOIN frames ON people.frame_id = frames.id "
        "JOIN sources ON frames.source_id = sources.id ORDER BY sources.id, frames.frame, people.id")


@dataclass
class AdaptReport:
    """What an adaptation did: tracklets and crops trained on, loss at the start and end, people re-embedded."""

    tracklets: int
    identities: int
    crops: int
    steps: int
    first_loss: float
    last_loss: float
    people: int
    seconds: float
    model: str


def _frames_of(rows: list[tuple]) -> dict[int, list[tuple[int, list[tuple]]]]:
    """source id -> [(frame number, its person rows)] in frame order."""
    out: dict[int, list[tuple[int, list[tuple]]]] = {}
    for row in rows:
        frames = out.setdefault(row[1], [])
        if not frames or frames[-1][0] != row[4]:
            frames.append((row[4], []))
        frames[-1][1].append(row)
    return out


def _decoded(path: str, kind: str, wanted: list[int]):
    """(frame number, RGB) for the wanted frames of a source, decoded in one pass for a video."""
    if kind != "video":
        yield wanted[0], read_source(path, kind, wanted[0])
        return
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: indexed video is no longer on disk")
    need = set(wanted)
    for frame in video_frames(path, start=min(wanted), stop=max(wanted) + 1):
        if frame.rgb is not None and frame.frame in need:
            yield frame.frame, frame.rgb


def training_set(rows: list[tuple], crop, max_crops: int, seed: int, embeddings=None, merge: float = 0.0,
                 on_progress: Progress | None = None):
    """(crops, labels, number of tracklets, number of identities) from the indexed videos.

    ``crop(rgb, boxes)`` cuts normalised crops. Labels are tracklets, or with ``merge`` > 0 pseudo-
    identities: tracklets whose mean embeddings (``embeddings(ids)``, the index's) are within
    cosine distance ``merge`` are one person (``tracklets.merge_tracklets``)."""
    import torch

    from .tracklets import link_tracklets, merge_tracklets

    by_source = _frames_of(rows)
    tracks: list[tuple[int, list[tuple[int, np.ndarray, int]]]] = []  # (source, [(frame, box, person id)])
    for source, frames in by_source.items():
        if frames[0][1][0][3] != "video":
            continue
        boxes = [np.array([r[5:9] for r in people], np.float64) for _, people in frames]
        tracks += [(source, [(frames[f][0], boxes[f][b], frames[f][1][b][0]) for f, b in track])
                   for track in link_tracklets(boxes)]
    if len(tracks) < 2:
        raise ValueError(f"adaptation needs people followed over consecutive indexed frames of a video; found "
                         f"{len(tracks)} tracklet(s): index a video with a smaller --every (e.g. 2 frames per second)")
    ident = np.arange(len(tracks))
    if merge > 0 and embeddings is not None:
        means = np.stack([embeddings([pid for _, _, pid in items]).mean(0) for _, items in tracks])
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        spans = [(source, items[0][0], items[-1][0]) for source, items in tracks]
        ident = merge_tracklets(means, spans, merge)
    wanted: dict[int, list[tuple[int, np.ndarray, int]]] = {}  # source -> (frame, box, label)
    for (source, items), label in zip(tracks, ident):
        wanted.setdefault(source, []).extend((f, b, int(label)) for f, b, _ in items)
    picks = [(s, f, b, lab) for s, items in wanted.items() for f, b, lab in items]
    if len(picks) > max_crops:
        keep = np.random.default_rng(seed).choice(len(picks), max_crops, replace=False)
        picks = [picks[i] for i in sorted(keep)]
    crops, labels = [], []
    frames_total, frames_done = len({(p[0], p[1]) for p in picks}), 0
    for source in sorted({p[0] for p in picks}):
        mine = [p for p in picks if p[0] == source]
        first = by_source[source][0][1][0]
        boxes_at: dict[int, list[tuple[np.ndarray, int]]] = {}
        for _, f, b, lab in mine:
            boxes_at.setdefault(f, []).append((b, lab))
        for f, rgb in _decoded(first[2], first[3], sorted(boxes_at)):
            items = boxes_at[f]
            crops.append(crop(rgb, np.stack([b for b, _ in items])).half())
            labels += [lab for _, lab in items]
            frames_done += 1
            if on_progress is not None:
                on_progress("crops", frames_done, frames_total)
    return torch.cat(crops), np.array(labels), len(tracks), int(ident.max()) + 1


def _reembed(index: PersonIndex, searcher, rows: list[tuple], work: Path, progress: bool,
             on_progress: Progress | None = None) -> dict[int, np.ndarray]:
    """person id -> new embedding, one ``work/emb_SOURCE.npz`` per finished source (resumable)."""
    from tqdm import tqdm

    out: dict[int, np.ndarray] = {}
    by_source = _frames_of(rows)
    bar = tqdm(total=len(rows), desc="re-embed", unit="person", disable=not progress)
    for source, frames in by_source.items():
        done = work / f"emb_{source}.npz"
        if done.is_file():
            saved = np.load(done)
            out.update(zip(saved["ids"].tolist(), saved["embeddings"]))
            bar.update(len(saved["ids"]))
            if on_progress is not None:
                on_progress("re-embedding", bar.n, len(rows))
            continue
        first = frames[0][1][0]
        people = dict(frames)
        ids, embs = [], []
        for f, rgb in _decoded(first[2], first[3], [f for f, _ in frames]):
            rows_f = people[f]
            embs.append(np.asarray(searcher.extract_query(rgb, np.array([r[5:9] for r in rows_f])), np.float32))
            ids += [r[0] for r in rows_f]
            bar.update(len(rows_f))
            if on_progress is not None:
                on_progress("re-embedding", bar.n, len(rows))
        if len(ids) != sum(len(p) for p in people.values()):
            raise ValueError(f"{first[2]}: some indexed frames could not be decoded again; adaptation stopped "
                             "before changing the index")
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array(ids), embeddings=np.concatenate(embs))
        atomic_write_bytes(done, buffer.getvalue())
        out.update(zip(ids, np.concatenate(embs)))
    bar.close()
    return out


def with_weights(spec: str, weights: Path | str) -> str:
    """``spec`` (a pretrained spec) with its ``weights=`` option set to ``weights`` (a path relative
    to the index folder, or absolute)."""
    base, _, opts = spec.partition("@")
    kept = [o for o in opts.split("+") if o and not o.startswith("weights=")]
    return f"{base}@{'+'.join([*kept, f'weights={weights}'])}"


def check_adaptable(index: PersonIndex) -> str:
    """The spec of the model ``index`` was built with, read as it loads; ValueError naming the index
    if adaptation cannot tune it (it is not the pretrained pipeline)."""
    from ..pipelines import is_pretrained

    spec = resolved_spec(index.model, index.dim, index.path)
    if not is_pretrained(spec):
        raise ValueError(f"{index.path}: built with model {index.model}; adaptation tunes the pretrained pipeline's "
                         "embedder (build the index with --model pretrained)")
    return spec


def adapt_index(path: str | Path, cfg=None, max_crops: int = 2000, merge: float = 0.0,
                progress: bool = True, on_progress: Progress | None = None) -> AdaptReport:
    """Adapt the index at ``path`` to its own footage (see the module docstring); returns the report.
    ``merge`` > 0 trains on pseudo-identities (tracklets merged within that cosine distance).
    ``on_progress(stage, done, total)``: called as crops are read, steps trained, people re-embedded."""
    from ..pipelines import FinetuneConfig, finetune_on_tracklets, save_embedder

    start = time.time()
    cfg = cfg or FinetuneConfig()
    index = PersonIndex.open(path)
    try:
        spec = check_adaptable(index)
        work = Path(path) / WORK
        work.mkdir(exist_ok=True)
        plan = json.dumps({"spec": spec, "cfg": cfg.__dict__, "max_crops": max_crops, "merge": merge},
                          sort_keys=True)
        if (work / "plan.json").is_file() and (work / "plan.json").read_text() != plan:
            for stale in (work / "state.pt", *work.glob("emb_*.npz")):  # never the weights the index uses
                stale.unlink(missing_ok=True)
        atomic_write_text(work / "plan.json", plan)
        with index._writer.hold():
            rows = index._conns.get().execute(ROWS).fetchall()
            searcher = load_model(spec, index.meta.get("score_threshold", 0.5), dim=index.dim)
            embedder = getattr(searcher, "embedder", None)
            tunable = getattr(embedder, "torch_embedder", embedder)  # the PyTorch one behind an onnxruntime backend
            if tunable is None or not hasattr(tunable, "features"):
                raise ValueError(f"{path}: the model {spec} has no tunable zero-shot embedder")
            conn = index._conns.get()
            crops, labels, tracklets, identities = training_set(
                rows, searcher.crops, max_crops, cfg.seed, lambda ids: metadata.embeddings_of(conn, ids, index.dim),
                merge, on_progress)
            on_step = None if on_progress is None else (lambda done, total: on_progress("training", done, total))
            losses = finetune_on_tracklets(tunable, crops, labels, cfg, work / "state.pt", progress, on_step)
            if hasattr(embedder, "refresh"):
                embedder.refresh()  # the onnxruntime backend embeds with the tuned weights from now on
            # a new file per adaptation: the index keeps pointing at the weights its embeddings came from
            weights = work / f"embedder-{hashlib.sha1(plan.encode()).hexdigest()[:10]}.pt"
            save_embedder(tunable, weights)
            new_spec = with_weights(spec, f"{WORK}/{weights.name}")  # relative: read inside the index
            fresh = _reembed(index, searcher, rows, work, progress, on_progress)
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("UPDATE people SET embedding = ? WHERE id = ?",
                                 ((np.asarray(e, "<f4").tobytes(), int(i)) for i, e in fresh.items()))
                conn.execute("UPDATE meta SET value = ? WHERE key = 'model'", (json.dumps(new_spec),))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            (Path(path) / VECTORS_NAME).unlink(missing_ok=True)
    finally:
        index.close()
    PersonIndex.open(path).close()  # rebuilds and saves the vector file from the new embeddings
    for done in (work / "state.pt", work / "plan.json", *work.glob("emb_*.npz"),
                 *(w for w in work.glob("embedder-*.pt") if w != weights)):  # earlier adaptations' weights
        done.unlink(missing_ok=True)
    return AdaptReport(tracklets, identities, len(labels), len(losses), losses[0], float(np.mean(losses[-10:])), len(fresh),
                       round(time.time() - start, 1), new_spec)


__all__ = ["AdaptReport", "adapt_index", "check_adaptable", "training_set", "with_weights"]
