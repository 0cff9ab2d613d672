"""Plain-folder readers: identity folders ``<pid>/<img>`` and flat/nested unlabeled crops."""

from __future__ import annotations

import re
from pathlib import Path

from personsearch.data.errors import DatasetError, require_dir
from personsearch.data.images import IMAGE_EXTENSIONS, is_image_file
from personsearch.data.records import ReidSample


def list_images(root: str | Path) -> list[Path]:
    """Every image (jpg/jpeg/png/bmp, any case) under ``root``, recursively, sorted by path.

    Raise DatasetError if ``root`` is missing or holds no image.
    """
    root = Path(root)
    require_dir(root, "image folder")
    paths = sorted(
        (p for p in root.rglob("*") if is_image_file(p) and p.is_file()),
        key=lambda p: p.relative_to(root).parts,
    )
    if not paths:
        raise DatasetError(root, f"no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    return paths


def read_identity_folder(root: str | Path, camera_regex: str | None = None) -> list[ReidSample]:
    """Read ``root/<identity>/<image>`` into samples.

    pids: identity folders (those holding at least one image, directly) relabelled
    ``0..K-1`` in sorted order of the folder name (string order). Images sorted by name within a
    folder. camid: ``int`` of the first group of ``camera_regex`` searched in the file name,
    taken as is (write the regex so that it yields the 0-based id you want), else 0. A file name
    the regex does not match is a DatasetError naming the file. Files directly in ``root`` are
    ignored.
    """
    root = Path(root)
    require_dir(root, "identity folder root")
    pattern = re.compile(camera_regex) if camera_regex is not None else None
    if pattern is not None and pattern.groups < 1:
        raise ValueError(f"camera_regex {camera_regex!r} needs one capture group")
    folders: list[tuple[str, list[Path]]] = []
    for sub in sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.name):
        images = sorted((p for p in sub.iterdir() if is_image_file(p) and p.is_file()),
                        key=lambda p: p.name)
        if images:
            folders.append((sub.name, images))
    if not folders:
        raise DatasetError(root, "no identity folders with images (<pid>/<image>) found")
    samples: list[ReidSample] = []
    for pid, (_, images) in enumerate(folders):
        for path in images:
            samples.append(ReidSample(path=path, pid=pid, camid=_camid(path, pattern)))
    return samples


def _camid(path: Path, pattern: re.Pattern[str] | None) -> int:
    if pattern is None:
        return 0
    m = pattern.search(path.name)
    if m is None:
        raise DatasetError(path, f"file name does not match camera regex {pattern.pattern!r}",
                           field="camera")
    try:
        return int(m.group(1))
    except (TypeError, ValueError):
        raise DatasetError(path, f"camera group {m.group(1)!r} is not an integer",
                           field="camera") from None
