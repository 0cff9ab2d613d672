"""Shared parser of Market-style ReID folders (Market-1501, DukeMTMC-reID, CUHK03-NP).

Layout: ``<data_dir>/{bounding_box_train,query,bounding_box_test}/PPPP_cC....<ext>``.
Semantics follow torchreid's ``process_dir`` (market1501.py / dukemtmcreid.py) and the common
CUHK03-NP readers:

- pid and camera come from ``pattern`` (group 1 = pid, group 2 = camera, 1-based) matched at the
  start of the file name (torchreid searches the whole path; anchoring on the name avoids matching
  a folder name by accident);
- pid -1 = junk: dropped from every split; pid 0 (Market distractors) is kept;
- camid = C - 1; a camera outside ``1..num_cams`` or a pid outside ``0..max_pid`` is an error
  (torchreid asserts; we raise :class:`DatasetError` naming the file);
- files are sorted by name; the training split is relabelled ``0..K-1`` in sorted order of the
  original pid; query/gallery keep the original pids;
- only files with one of ``extensions`` (case-insensitive) are read; others (``Thumbs.db``) are
  ignored, as torchreid's ``glob('*.jpg')`` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from personsearch.data.errors import DatasetError, require_dir
from personsearch.data.records import ReidDataset, ReidSample

# torchreid/fast-reid: re.compile(r'([-\d]+)_c(\d)')
MARKET_PATTERN = re.compile(r"([-\d]+)_c(\d)")
JUNK_PID = -1
SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")


def find_dataset_dir(root: str | Path, candidates: Sequence[str], markers: Sequence[str]) -> Path:
    """Return the first ``root / candidate`` that contains one of ``markers``.

    ``candidates`` are sub-paths tried in order ("" = ``root`` itself). Raise a DatasetError
    naming the first expected marker under ``root`` when none is found.
    """
    root = Path(root).expanduser()
    require_dir(root, "dataset root folder")
    for cand in candidates:
        base = root / cand if cand else root
        if any((base / m).exists() for m in markers):
            return base
    tried = ", ".join(repr(c) if c else "'.'" for c in candidates)
    raise DatasetError(
        root / markers[0], f"not found (looked for any of {list(markers)} in {tried} under {root})"
    )


def parse_market_name(
    path: Path, pattern: re.Pattern[str], num_cams: int, max_pid: int | None = None
) -> tuple[int, int]:
    """Return ``(pid, camid)`` (camid 0-based) of a Market-style file; pid may be -1 (junk)."""
    m = pattern.match(path.name)
    if m is None:
        raise DatasetError(path, f"file name does not match {pattern.pattern!r}", field="name")
    try:
        pid, cam = int(m.group(1)), int(m.group(2))
    except ValueError:
        raise DatasetError(
            path, f"cannot read pid/camera from {path.name!r}", field="name"
        ) from None
    if pid < JUNK_PID or (max_pid is not None and pid > max_pid):
        bound = f"0..{max_pid}" if max_pid is not None else ">= 0"
        raise DatasetError(path, f"pid {pid} outside {bound} (or -1 for junk)", field="pid")
    if not 1 <= cam <= num_cams:
        raise DatasetError(path, f"camera c{cam} outside c1..c{num_cams}", field="camera")
    return pid, cam - 1


def read_market_split(
    folder: Path,
    *,
    pattern: re.Pattern[str] = MARKET_PATTERN,
    num_cams: int,
    extensions: Sequence[str] = (".jpg",),
    max_pid: int | None = None,
    relabel: bool = False,
) -> list[ReidSample]:
    """Read one split folder: junk dropped, sorted by file name, optionally relabelled."""
    require_dir(folder, "split folder")
    exts = {e.lower() for e in extensions}
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in exts and p.is_file()),
        key=lambda p: p.name,
    )
    parsed: list[tuple[Path, int, int]] = []
    for p in files:
        pid, camid = parse_market_name(p, pattern, num_cams, max_pid)
        if pid == JUNK_PID:
            continue
        parsed.append((p, pid, camid))
    if not parsed:
        raise DatasetError(
            folder, f"empty split: no usable images ({'/'.join(sorted(exts))}, junk excluded)"
        )
    mapping = {pid: i for i, pid in enumerate(sorted({pid for _, pid, _ in parsed}))}
    return [
        ReidSample(path=p, pid=mapping[pid] if relabel else pid, camid=camid)
        for p, pid, camid in parsed
    ]


def read_market_style(
    root: str | Path,
    *,
    name: str,
    candidates: Sequence[str],
    num_cams: int,
    pattern: re.Pattern[str] = MARKET_PATTERN,
    extensions: Sequence[str] = (".jpg",),
    max_pid: int | None = None,
    split_dirs: Sequence[str] = SPLIT_DIRS,
) -> ReidDataset:
    """Read a Market-style dataset whose data folder is ``root`` or ``root / candidate``.

    ``split_dirs`` = (train, query, gallery) folder names. A data folder is recognised by any
    of them existing; every one of them must then exist (DatasetError naming the missing one).
    """
    data_dir = find_dataset_dir(root, candidates, split_dirs)
    train_dir, query_dir, gallery_dir = (data_dir / d for d in split_dirs)
    for d in (train_dir, query_dir, gallery_dir):
        require_dir(d, "split folder")
    read = partial(
        read_market_split,
        pattern=pattern,
        num_cams=num_cams,
        extensions=extensions,
        max_pid=max_pid,
    )
    return ReidDataset(
        name=name,
        root=data_dir,
        train=read(train_dir, relabel=True),
        query=read(query_dir),
        gallery=read(gallery_dir),
    )
