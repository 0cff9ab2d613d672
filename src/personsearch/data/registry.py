"""Name -> reader for every supported dataset format (used by the CLI and by recipes)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

from .coco import read_coco_persons
from .cuhk_sysu import read_cuhk_sysu
from .folder import list_images, read_identity_folder
from .market1501 import read_cuhk03_np, read_dukemtmc, read_market1501
from .msmt17 import read_msmt17
from .prw import read_prw
from .records import DetectionDataset, ReidDataset, ReidSample, SearchDataset

AnyDataset = Union[ReidDataset, SearchDataset, DetectionDataset, list[ReidSample], list[Path]]

READERS: dict[str, Callable[[Path], AnyDataset]] = {
    "market1501": read_market1501,
    "dukemtmc": read_dukemtmc,
    "msmt17": read_msmt17,
    "cuhk03-np": lambda root: read_cuhk03_np(root, "labeled"),
    "cuhk03-np-detected": lambda root: read_cuhk03_np(root, "detected"),
    "cuhk-sysu": read_cuhk_sysu,
    "prw": read_prw,
    "coco": read_coco_persons,  # ROOT is the annotation JSON
    "folder": read_identity_folder,  # <pid>/<image>
    "unlabeled": list_images,  # a folder of unlabeled crops
}


def read_dataset(fmt: str, root: str | Path) -> AnyDataset:
    """Read ``root`` with the reader registered as ``fmt``."""
    key = fmt.lower().replace("_", "-")
    if key not in READERS:
        raise ValueError(f"unknown dataset format '{fmt}' (known: {', '.join(READERS)})")
    return READERS[key](Path(root))


def read_search_dataset(fmt: str, root: str | Path) -> SearchDataset:
    """``read_dataset`` for a person search format (cuhk-sysu, prw); ValueError for any other."""
    data = read_dataset(fmt, root)
    if not isinstance(data, SearchDataset):
        raise ValueError(f"format '{fmt}' is not a person search dataset (cuhk-sysu, prw)")
    return data
