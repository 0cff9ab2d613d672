"""Build the real-footage benchmark's ground truth on Debian's ``vtest.avi`` (run once; output committed).

Steps (all offline):

1. every frame through the shipped SSDLite detector in its tiled mode (score >= 0.5), cached;
2. detections linked into tracks frame to frame (Hungarian on IoU with a constant-velocity prediction,
   IoU >= 0.3; a track survives up to ``--max-gap`` missed frames, which are then filled by linear
   interpolation); tracks shorter than ``--min-frames`` are dropped;
3. one contact sheet per track (a crop every second) written for a human check; identities that the
   tracker split are merged, and tracks that switch person are cut, through ``--identities``
   (a YAML file ``{merge: [[t1, t2], ...], drop: [t, ...], cut: {t: frame}}``) on a second run.

    .venv/bin/python tools/vtest_ground_truth.py --out benchmarks/data/vtest_tracks.json --sheets /tmp/sheets
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def detect_all(video: Path, cache: Path) -> list[np.ndarray]:
    """Tiled SSDLite detections (N, 5) of every frame, cached in ``cache`` (npz)."""
    if cache.is_file():
        data = np.load(cache)
        return [data[f"f{i}"] for i in range(int(data["count"]))]
    from tqdm import tqdm

    from personsearch.detection import SsdlitePersonDetector
    from personsearch.index.frames import video_frames, video_info

    detector = SsdlitePersonDetector(score_threshold=0.5, tile=True)
    _, count = video_info(video)
    out = [detector.detect(frame.rgb) for frame in tqdm(video_frames(video), total=count, desc="detect")]
    np.savez_compressed(cache, count=len(out), **{f"f{i}": d for i, d in enumerate(out)})
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from personsearch.evaluation.detection import box_iou

    return box_iou(a[:, None, :], b[None, :, :])


def link(dets: list[np.ndarray], max_gap: int, min_iou: float = 0.3,
         touch_iou: float = 0.1) -> list[dict[int, np.ndarray]]:
    """Tracks as {frame: box} built by frame-to-frame Hungarian matching on IoU.

    Where people cross, an IoU tracker swaps them; so a match is refused as ambiguous when the track's
    predicted box also touches another detection (IoU >= ``touch_iou``) or the detection touches another
    track's prediction: the track ends there and the detection starts a new one. Tracks stay short
    but hold one person each.
    """
    from scipy.optimize import linear_sum_assignment

    live: list[dict] = []
    done: list[dict] = []
    for f, d in enumerate(dets):
        boxes = d[:, :4] if len(d) else np.zeros((0, 4))
        pred = []
        for t in live:
            frames = sorted(t["boxes"])
            last = t["boxes"][frames[-1]]
            vel = (last - t["boxes"][frames[-2]]) / (frames[-1] - frames[-2]) if len(frames) > 1 else 0
            pred.append(last + vel * (f - frames[-1]))
        used: set[int] = set()
        ended: set[int] = set()
        if live and len(boxes):
            iou = _iou(np.array(pred), boxes)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] < min_iou:
                    continue
                crowded = (iou[r] >= touch_iou).sum() > 1 or (iou[:, c] >= touch_iou).sum() > 1
                if crowded:
                    ended.add(int(r))
                else:
                    live[r]["boxes"][f] = boxes[c]
                    used.add(int(c))
        for c in range(len(boxes)):
            if c not in used:
                live.append({"boxes": {f: boxes[c]}})
        keep = []
        for i, t in enumerate(live):
            (done if i in ended or f - max(t["boxes"]) > max_gap else keep).append(t)
        live = keep
    return [t["boxes"] for t in done + live]


def moving(track: dict[int, list[float]], min_travel: float = 0.5) -> bool:
    """Whether the box centre travels at least ``min_travel`` box heights (signs and cones do not)."""
    boxes = np.array([track[f] for f in sorted(track)])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    travel = np.linalg.norm(centres - centres[0], axis=1).max()
    return bool(travel >= min_travel * np.median(boxes[:, 3] - boxes[:, 1]))


def fill_gaps(track: dict[int, np.ndarray]) -> dict[int, list[float]]:
    """Every frame from first to last, missing ones linearly interpolated."""
    frames = sorted(track)
    out = {}
    for a, b in zip(frames, frames[1:] + [frames[-1] + 1]):
        for f in range(a, b):
            w = (f - a) / (b - a) if b in track else 0.0
            box = track[a] * (1 - w) + (track[b] if b in track else track[a]) * w
            out[f] = [round(float(v), 1) for v in box]
    return out


def apply_identities(tracks: list[dict[int, list[float]]], spec: dict) -> dict[int, dict[int, list[float]]]:
    """Identity -> {frame: box} after the human check's cuts, drops and merges."""
    tracks = [dict(t) for t in tracks]
    for t, frame in (spec.get("cut") or {}).items():
        t = int(t)
        tail = {f: b for f, b in tracks[t].items() if f >= int(frame)}
        tracks[t] = {f: b for f, b in tracks[t].items() if f < int(frame)}
        tracks.append(tail)
    owner = list(range(len(tracks)))
    for group in spec.get("merge") or []:
        for t in group[1:]:
            owner[int(t)] = int(group[0])
    dropped = {int(t) for t in spec.get("drop") or []}
    people: dict[int, dict[int, list[float]]] = {}
    for t, track in enumerate(tracks):
        if t in dropped or owner[t] in dropped:
            continue
        person = people.setdefault(owner[t], {})
        overlap = set(person) & set(track)
        if overlap:
            raise ValueError(f"merge puts track {t} and track {owner[t]} in the same frames {sorted(overlap)[:3]}")
        person.update(track)
    return people


def clear_frames(track: dict[int, list[float]], dets: list[np.ndarray], min_height: float = 60.0) -> list[int]:
    """Frames where the person is >= ``min_height`` px tall and no other detection touches the box
    (IoU < 0.05 with every detection but the person's own): usable query crops."""
    out = []
    for f, box in sorted(track.items()):
        box = np.asarray(box)
        if box[3] - box[1] < min_height:
            continue
        others = dets[f][:, :4] if len(dets[f]) else np.zeros((0, 4))
        iou = _iou(box[None], others)[0] if len(others) else np.zeros(0)
        if (iou >= 0.05).sum() - (iou >= 0.5).any() == 0:
            out.append(int(f))
    return out


def contact_sheets(video: Path, tracks: list[dict[int, list[float]]], out: Path, step: int = 10) -> None:
    """One row of crops (one per second) per track, 16 tracks per PNG, labelled with the track number."""
    import cv2

    from personsearch.index.frames import video_frames

    frames = {f.frame: f.rgb for f in video_frames(video, every=1)}
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for t, track in enumerate(tracks):
        keys = sorted(track)[::step][:24]
        crops = []
        for f in keys:
            x1, y1, x2, y2 = (int(round(v)) for v in track[f])
            crop = frames[f][max(0, y1):max(y1 + 1, y2), max(0, x1):max(x1 + 1, x2)]
            crops.append(cv2.resize(crop, (40, 96)))
        row = np.full((100, 60 + 42 * 24, 3), 255, np.uint8)
        cv2.putText(row, str(t), (2, 55), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
        for i, c in enumerate(crops):
            row[2:98, 60 + 42 * i:100 + 42 * i] = c
        rows.append(row)
    for page in range(0, len(rows), 16):
        sheet = np.concatenate(rows[page:page + 16])
        cv2.imwrite(str(out / f"tracks_{page // 16:02d}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VTEST)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("runs/vtest_ssdlite_tiled.npz"))
    parser.add_argument("--identities", type=Path, default=None, help="YAML of merges/drops/cuts from the check")
    parser.add_argument("--sheets", type=Path, default=None, help="write contact sheets here")
    parser.add_argument("--max-gap", type=int, default=8)
    parser.add_argument("--min-frames", type=int, default=30)
    args = parser.parse_args(argv)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    dets = detect_all(args.video, args.cache)
    tracks = [fill_gaps(t) for t in link(dets, args.max_gap)]
    tracks = sorted((t for t in tracks if len(t) >= args.min_frames and moving(t)), key=min)
    if args.sheets:
        contact_sheets(args.video, tracks, args.sheets)
    spec = {}
    if args.identities:
        import yaml

        spec = yaml.safe_load(args.identities.read_text()) or {}
    people = apply_identities(tracks, spec)
    ordered = [p for _, p in sorted(people.items(), key=lambda kv: min(kv[1]))]
    payload = {"video": args.video.name, "frames": len(dets), "fps": 10.0,
               "source": "SSDLite tiled (score >= 0.5) + IoU tracking + human check (tools/vtest_ground_truth.py)",
               "people": [{"id": i, "boxes": {str(f): b for f, b in sorted(p.items())},
                           "clear": clear_frames(p, dets)} for i, p in enumerate(ordered)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from personsearch.utils.files import atomic_write_text

    atomic_write_text(args.out, json.dumps(payload, separators=(",", ":")))
    print(f"{len(tracks)} tracks -> {len(people)} people, {sum(len(p) for p in people.values())} boxes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
