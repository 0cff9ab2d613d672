"""Datasets: readers for every standard format, the typed records they return, and the person search
galleries of the official protocols.

    from personsearch.data import read_market1501, read_cuhk_sysu, read_dataset, cuhk_sysu_galleries
    market = read_market1501("/data/market1501")        # ReidDataset: train / query / gallery
    sysu = read_dataset("cuhk-sysu", "/data/cuhk_sysu")   # SearchDataset

Torch datasets, samplers and transforms live in ``personsearch.data.torch_datasets``, ``.samplers``
and ``.transforms`` (imported on demand: reading a dataset needs no torch).
"""

from .check import CheckReport, check_dataset
from .coco import read_coco_persons
from .cuhk_sysu import read_cuhk_sysu
from .errors import DatasetError
from .folder import list_images, read_identity_folder
from .galleries import FrameGallery, cuhk_sysu_galleries, prw_galleries
from .market1501 import read_cuhk03_np, read_dukemtmc, read_market1501
from .msmt17 import read_msmt17
from .prw import read_prw
from .records import (
    UNLABELED,
    DetectionDataset,
    GalleryList,
    ReidDataset,
    ReidSample,
    SceneAnnotation,
    SearchDataset,
    SearchQuery,
)
from .registry import READERS, read_dataset

__all__ = [
    "READERS", "UNLABELED", "CheckReport", "DatasetError", "DetectionDataset", "FrameGallery", "GalleryList",
    "ReidDataset", "ReidSample", "SceneAnnotation", "SearchDataset", "SearchQuery", "check_dataset",
    "cuhk_sysu_galleries", "list_images", "prw_galleries", "read_coco_persons", "read_cuhk03_np", "read_cuhk_sysu",
    "read_dataset", "read_dukemtmc", "read_identity_folder", "read_market1501", "read_msmt17", "read_prw",
]
