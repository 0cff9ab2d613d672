"""Readers of the Market-style ReID benchmarks: Market-1501, DukeMTMC-reID, CUHK03-NP.

All three share :func:`personsearch.data.market_style.read_market_style` (see there for the
semantics). ``root`` may be the data folder itself (the one holding ``bounding_box_train``) or a
parent holding it under its usual name, as torchreid / fast-reid accept.
"""

from __future__ import annotations

from pathlib import Path

from personsearch.data.market_style import read_market_style
from personsearch.data.records import ReidDataset

CUHK03_NP_VARIANTS = ("labeled", "detected")


def read_market1501(root: str | Path) -> ReidDataset:
    """Market-1501: ``PPPP_cCsS_FFFFFF_NN.jpg``, 6 cameras, pids 0..1501 (0 = distractor).

    ``root`` = the data folder, or a parent with ``Market-1501-v15.09.15/``, ``market1501/``
    or torchreid's ``market1501/Market-1501-v15.09.15/``.
    Official counts (torchreid): train 12936 images / 751 ids, query 3368 / 750, gallery
    15913 / 751 (750 + distractor pid 0), 6 cameras each.
    """
    return read_market_style(
        root,
        name="market1501",
        candidates=(
            "",
            "Market-1501-v15.09.15",
            "market1501/Market-1501-v15.09.15",
            "market1501",
            "Market-1501",
        ),
        num_cams=6,
        max_pid=1501,
    )


def read_dukemtmc(root: str | Path) -> ReidDataset:
    """DukeMTMC-reID: ``PPPP_cC_fFFFFFFF.jpg``, 8 cameras.

    ``root`` = the data folder, or a parent with ``DukeMTMC-reID/`` or torchreid's
    ``dukemtmc-reid/DukeMTMC-reID/``. Official counts: train 16522 / 702 ids, query 2228 / 702,
    gallery 17661 / 1110.
    """
    return read_market_style(
        root,
        name="dukemtmcreid",
        candidates=("", "DukeMTMC-reID", "dukemtmc-reid/DukeMTMC-reID", "dukemtmc-reid"),
        num_cams=8,
    )


def read_cuhk03_np(root: str | Path, variant: str = "labeled") -> ReidDataset:
    """CUHK03-NP (Zhong et al. CVPR'17 767/700 split) in its Market-style folder release.

    Layout ``cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/`` with
    ``PPPP_cC_....png`` names, 2 cameras (the two views of a camera pair). ``root`` = the
    ``cuhk03-np`` folder, its parent, or the variant folder itself (its name must equal
    ``variant``). Official counts: labeled 7368 / 1400 / 5328, detected 7365 / 1400 / 5332
    images; 767 train ids, 700 test ids.
    """
    variant = variant.lower()
    if variant not in CUHK03_NP_VARIANTS:
        raise ValueError(f"variant must be one of {CUHK03_NP_VARIANTS}, got {variant!r}")
    candidates = [""] if Path(root).name.lower() == variant else []
    candidates += [
        variant,
        f"cuhk03-np/{variant}",
        f"CUHK03-NP/{variant}",
        f"cuhk03_np/{variant}",
        f"cuhk03np/{variant}",
    ]
    return read_market_style(
        root,
        name=f"cuhk03_np_{variant}",
        candidates=candidates,
        num_cams=2,
        extensions=(".png",),
    )
