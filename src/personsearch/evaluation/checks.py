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


def feature_pair(query, gallery, q_name: str, g_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 (N, D) feature sets, validated: non-empty, same D, finite; errors name them."""
    q = as_array(query, q_name, 2, np.float32)
    g = as_array(gallery, g_name, 2, np.float32)
    if len(q) == 0 or len(g) == 0:
        raise ValueError(f"need at least one row in {q_name} and {g_name}, got shapes {q.shape} and {g.shape}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"{g_name} has feature dimension {g.shape[1]} but {q_name} has {q.shape[1]}")
    require_finite(q, q_name)
    require_finite(g, g_name)
    return np.ascontiguousarray(q), np.ascontiguousarray(g)
