"""Real-footage person search benchmark on Debian's ``vtest.avi``: mAP, top-1, detection, ms per frame.

Protocol (ours). Ground truth: ``benchmarks/data/vtest_tracks.json``, built by
``tools/vtest_ground_truth.py``: tiled SSDLite detections (score >= 0.5) linked into tracks by IoU, a
track ended wherever it touches another person (so no track swaps people), static boxes dropped,
tracks >= 3 s kept, gaps interpolated, and every track checked by eye on contact sheets (two dropped,
``benchmarks/data/vtest_check.yaml``): 26 tracks of one person each, 1442 boxes. Tracks are not
merged into identities, so only frames where a query's track is present are scored:

- gallery frames: every 5th frame (2 per second of the 10 fps video);
- a query per track: its first frame where it is >= 60 px tall and no other detection touches it,
  cropped at the ground-truth box (a user's query crop);
- the query's gallery: its track's gallery frames at least 2 s later (the same walk, later on; no
  near-duplicates). Each holds the person (its GT box) among everybody else the pipeline detects
  there: the task is to rank the person above the others of the same frames, over the whole walk;
- scoring: CUHK-SYSU's (``evaluate_search``: one true positive per frame, IoU >= 0.5 with the GT box,
  AP scaled by the share of frames where the person was detected at all); detection: recall and AP
  against the tracks' boxes in all gallery frames (people in no kept track count as false positives,
  so AP is a lower bound; the boxes come from tiled SSDLite, which favours it).

    .venv/bin/python benchmarks/real_footage.py --pipelines pretrained,pretrained@tile

A pipeline is any model ``load_searcher`` takes: ``pretrained``, ``pretrained@OPTIONS`` (e.g.
``pretrained@plain+detector=ssdlite+tile``, see ``pipelines.pretrained_options``) or a training run
folder; ``+bf16`` at the end runs its networks in bfloat16; ``adapt:PIPELINE`` first indexes the video
with it (every 5th frame) and runs ``personsearch adapt`` on that index (no labels), then evaluates the
adapted model (the query crops are embedded by it too). Prints one JSON line with a row per pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
TRACKS = Path(__file__).resolve().parent / "data" / "vtest_tracks.json"
GALLERY_EVERY = 5
MIN_GAP_FRAMES = 20


def load_people(path: Path = TRACKS) -> dict[int, dict]:
    """Track id -> {"boxes": {frame: [x1, y1, x2, y2]}, "clear": [frames usable as query crops]}."""
    data = json.loads(Path(path).read_text())
    return {int(p["id"]): {"boxes": {int(f): np.asarray(b, np.float64) for f, b in p["boxes"].items()},
                           "clear": [int(f) for f in p["clear"]]} for p in data["people"]}


def protocol(people: dict[int, dict], frames: int):
    """Queries (track, frame, box), the gallery frames, and per query its gallery: the track's gallery
    frames at least MIN_GAP_FRAMES later, as (frame name, GT box)."""
    gallery = list(range(0, frames, GALLERY_EVERY))
    queries, galleries = [], []
    for pid, person in sorted(people.items()):
        boxes = person["boxes"]
        for f in person["clear"]:
            later = [(str(g), boxes[g]) for g in gallery if g in boxes and g - f >= MIN_GAP_FRAMES]
            if later:
                queries.append((pid, f, boxes[f]))
                galleries.append(later)
                break
    return queries, gallery, galleries


def gt_boxes(people: dict[int, dict], frames: list[int]) -> dict[str, np.ndarray]:
    """Frame name -> (N, 4) ground-truth boxes of every track in it."""
    out = {str(f): [] for f in frames}
    for person in people.values():
        for f, box in person["boxes"].items():
            if str(f) in out:
                out[str(f)].append(box)
    return {k: np.asarray(v, np.float64).reshape(-1, 4) for k, v in out.items()}


def build(spec: str, threads: int):
    """A searcher from a pipeline spec: a model (see ``load_searcher``), ``+bf16`` runs it in bfloat16."""
    import torch

    from personsearch.pipelines import load_searcher

    model, bf16 = (spec[:-len("+bf16")], True) if spec.endswith("+bf16") else (spec, False)
    torch.set_num_threads(threads)
    return load_searcher(model, dtype=torch.bfloat16 if bf16 else None)


def adapted(spec: str, video: Path, threads: int, work: Path, merge: float = 0.0) -> tuple[str, dict]:
    """``personsearch adapt`` as a user runs it: index the video (every GALLERY_EVERY-th frame) with
    ``spec``, adapt the index; returns the adapted model spec and what the adaptation did."""
    import shutil

    import torch

    from personsearch.index import PersonIndex, embedding_dim
    from personsearch.index.adapt import adapt_index
    from personsearch.index.model import resolved_spec

    torch.set_num_threads(threads)
    start = time.time()
    folder = work / "adapt-index"
    shutil.rmtree(folder, ignore_errors=True)
    searcher = build(spec, threads)
    index = PersonIndex.create(folder, model=spec, dim=embedding_dim(searcher))
    index.add_video(searcher, video, every=GALLERY_EVERY, progress=False)
    index.close()
    report = adapt_index(folder, merge=merge, progress=False)
    return resolved_spec(report.model, None, folder), {"adapt_minutes": round((time.time() - start) / 60, 1), "tracklets": report.tracklets,
                          "identities": report.identities}


def run_pipeline(spec: str, video: Path, people, frames: int, threads: int, work: Path,
                 merge: float = 0.0) -> dict[str, float]:
    """Scores of one pipeline under the protocol (``adapt:SPEC``: SPEC adapted to the video first)."""
    from tqdm import tqdm

    from personsearch.evaluation.detection import evaluate_detection
    from personsearch.evaluation.search import evaluate_search
    from personsearch.index.frames import read_video_frame, video_frames

    extra = {}
    if spec.startswith("adapt:"):
        spec, extra = adapted(spec[len("adapt:"):], video, threads, work, merge)
    searcher = build(spec, threads)
    queries, gallery, galleries = protocol(people, frames)
    wanted = set(gallery)
    dets, feats, seconds = {}, {}, 0.0
    for frame in tqdm(video_frames(video, every=GALLERY_EVERY), total=len(gallery), desc=spec, leave=False,
                      disable=None):
        if frame.frame not in wanted:
            continue
        start = time.perf_counter()
        out = searcher(frame.rgb)
        seconds += time.perf_counter() - start
        dets[str(frame.frame)] = np.concatenate([out["boxes"], out["scores"][:, None]], 1)
        feats[str(frame.frame)] = out["embeddings"]
    qfeats = np.concatenate([searcher.extract_query(read_video_frame(video, f), box[None]) for _, f, box in queries])
    scores = evaluate_search(qfeats, galleries, dets, feats, det_thresh=0.0)
    det = evaluate_detection(gt_boxes(people, gallery), dets)
    return {"mAP": round(100 * scores["mAP"], 1), "top1": round(100 * scores["top1"], 1),
            "det_recall": round(100 * det["recall"], 1), "det_AP": round(100 * det["AP"], 1),
            "ms_per_frame": round(1000 * seconds / len(gallery), 1), "queries": len(queries), **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="pretrained,pretrained@tile")
    parser.add_argument("--video", type=Path, default=VTEST)
    parser.add_argument("--tracks", type=Path, default=TRACKS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("runs/real_footage"), help="adapt: rows' index folder")
    parser.add_argument("--merge", type=float, default=0.0, help="adapt: rows: personsearch adapt --merge")
    args = parser.parse_args(argv)
    data = json.loads(args.tracks.read_text())
    people = load_people(args.tracks)
    rows = {spec: run_pipeline(spec, args.video, people, int(data["frames"]), args.threads, args.work, args.merge)
            for spec in args.pipelines.split(",")}
    print(json.dumps({"benchmark": "vtest", "threads": args.threads, "merge": args.merge, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
