"""Input validation shared by the evaluation functions: clear errors, never a wrong number."""

from __future__ import annotations

import numpy as np


def as_array(x, name: str, ndim: int, dtype=None) -> np.ndarray:
    """``x`` as a numpy array (torch tensors accepted) with ``ndim`` dimensions, else ValueError naming it."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=dtype)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    return arr


def require_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError naming ``name`` and the first bad position if ``arr`` holds NaN or inf."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})")


def require_length(arr: np.ndarray, n: int, name: str, against: str) -> None:
    """Raise ValueError if ``len(arr) != n``."""
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but {against} has {n}")
