"""Reader of MSMT17 (V1 ``train/ test/`` or V2 ``mask_train_v2/ mask_test_v2/``).

Semantics of torchreid / fast-reid ``msmt17.py``:

- splits come from ``list_{train,val,query,gallery}.txt``; each line ``<pid>/<file> <pid>``,
  path relative to the train folder (train, val) or the test folder (query, gallery);
- pid = the list's second field; camid = third ``_`` field of the file name minus 1
  (``0000_000_01_0303morning_0015_0.jpg`` -> camera 01 -> camid 0), 15 cameras;
- the val list is NOT added to train by default (torchreid adds it only with ``combineall``;
  its comment: "to fairly compare with published methods ... do not add val images");
  ``include_val=True`` appends it;
- line order of the list files is kept (deterministic); train pids are relabelled ``0..K-1`` in
  sorted order (identity on the official lists, whose train pids are already 0..1040).
Official counts: train 30248 images / 1041 ids (32621 with val), query 11659 / 3060,
gallery 82161 / 3060, 15 cameras. Image files are not stat'ed one by one.
"""

from __future__ import annotations

from pathlib import Path

from personsearch.data.errors import DatasetError, require_dir, require_file
from personsearch.data.market_style import find_dataset_dir
from personsearch.data.records import ReidDataset, ReidSample

NUM_CAMS = 15
# (train folder, test folder) of V1 and V2; "mask_*_V2" spellings also seen in the wild.
FOLDER_PAIRS = (
    ("train", "test"),
    ("mask_train_v2", "mask_test_v2"),
    ("mask_train_V2", "mask_test_V2"),
)
LIST_FILES = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
# torchreid tries MSMT17_V1 before MSMT17_V2.
CANDIDATES = ("", "MSMT17_V1", "MSMT17_V2", "msmt17/MSMT17_V1", "msmt17/MSMT17_V2", "MSMT17")


def msmt17_camid(list_path: Path, line_no: int, rel_path: str) -> int:
    """0-based camera of an MSMT17 file name (third ``_`` field, 1-based)."""
    parts = Path(rel_path).name.split("_")
    try:
        cam = int(parts[2])
    except (IndexError, ValueError):
        raise DatasetError(
            list_path,
            f"cannot read the camera (third '_' field) of {rel_path!r}",
            f"line {line_no}",
        ) from None
    if not 1 <= cam <= NUM_CAMS:
        raise DatasetError(
            list_path, f"camera {cam} of {rel_path!r} outside 1..{NUM_CAMS}", f"line {line_no}"
        )
    return cam - 1


def read_msmt17_list(list_path: Path, image_dir: Path) -> list[ReidSample]:
    """Parse one list file into samples with the list's own pids (no relabelling)."""
    require_file(list_path, "list file")
    samples: list[ReidSample] = []
    try:
        text = list_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(list_path, f"not UTF-8 text ({err})") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue  # blank (e.g. trailing) line
        if len(fields) != 2:
            raise DatasetError(
                list_path,
                f"expected 2 fields '<path> <pid>', got {len(fields)}: {line.strip()!r}",
                f"line {line_no}",
            )
        rel, pid_text = fields
        try:
            pid = int(pid_text)
        except ValueError:
            raise DatasetError(
                list_path, f"pid {pid_text!r} is not an integer", f"line {line_no}"
            ) from None
        if pid < 0:
            raise DatasetError(list_path, f"negative pid {pid}", f"line {line_no}")
        camid = msmt17_camid(list_path, line_no, rel)
        samples.append(ReidSample(path=image_dir / rel, pid=pid, camid=camid))
    if not samples:
        raise DatasetError(list_path, "empty split: the list has no samples")
    return samples


def _split_folders(data_dir: Path) -> tuple[Path, Path]:
    for train_name, test_name in FOLDER_PAIRS:
        if (data_dir / train_name).is_dir():
            return data_dir / train_name, require_dir(data_dir / test_name, "test folder")
    for train_name, test_name in FOLDER_PAIRS:
        if (data_dir / test_name).is_dir():
            raise DatasetError(data_dir / train_name, "missing train folder")
    raise DatasetError(data_dir / "train", "missing folder (nor mask_train_v2/ found)")


def read_msmt17(root: str | Path, include_val: bool = False) -> ReidDataset:
    """MSMT17 from ``root`` = the ``MSMT17_V1``/``MSMT17_V2`` folder or a parent of it.

    ``include_val`` appends ``list_val.txt`` to train (torchreid's ``combineall`` behaviour
    for val; off by default like torchreid and fast-reid).
    """
    markers = ("list_train.txt",) + tuple(train for train, _ in FOLDER_PAIRS)
    data_dir = find_dataset_dir(root, CANDIDATES, markers)
    train_dir, test_dir = _split_folders(data_dir)
    lists = {name: data_dir / name for name in LIST_FILES}
    train = read_msmt17_list(lists["list_train.txt"], train_dir)
    if include_val:
        train += read_msmt17_list(lists["list_val.txt"], train_dir)
    query = read_msmt17_list(lists["list_query.txt"], test_dir)
    gallery = read_msmt17_list(lists["list_gallery.txt"], test_dir)
    mapping = {pid: i for i, pid in enumerate(sorted({s.pid for s in train}))}
    train = [ReidSample(path=s.path, pid=mapping[s.pid], camid=s.camid) for s in train]
    return ReidDataset(name="msmt17", root=data_dir, train=train, query=query, gallery=gallery)
