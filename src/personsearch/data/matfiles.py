"""MATLAB ``.mat`` helpers: load with clear DatasetErrors, unpack struct/cell arrays, and build
struct/cell arrays that ``scipy.io.loadmat`` returns exactly like the official dataset files.

Loading (``scipy.io.loadmat`` defaults, as every reference implementation uses them):
- a MATLAB struct array ``1xN`` loads as a numpy structured array of shape ``(1, N)`` whose fields
  are object arrays; a cell array loads as an object array; a char array as ``array(['s'])``.

Writing: :func:`save_mat` is byte-deterministic (the timestamp in the 116-byte text header is
replaced by a fixed one) and atomic (temp file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from .errors import DatasetError, require_file

# Fixed MAT-file v5 text header (the first 116 bytes); scipy would write the current time.
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created on: Thu Jan  1 00:00:00 1970".ljust(116, b" ")


# ----------------------------------------------------------------------------------- loading
def load_mat(path: Path, keys: Sequence[str] = ()) -> dict[str, Any]:
    """Load a ``.mat`` file; raise a DatasetError if it is missing, unreadable or lacks a key."""
    require_file(path, ".mat file")
    try:
        data = scipy.io.loadmat(str(path), appendmat=False)
    except Exception as exc:  # scipy raises many types (ValueError, TypeError, zlib.error, ...)
        raise DatasetError(path, f"unreadable .mat file ({type(exc).__name__}: {exc})") from exc
    for key in keys:
        if key not in data:
            raise DatasetError(path, f"missing key (found: {', '.join(user_keys(data)) or 'none'})", key)
    return data


def user_keys(data: Mapping[str, Any]) -> list[str]:
    """Variable names of a loaded .mat dict (without ``__header__`` etc.)."""
    return [k for k in data if not k.startswith("__")]


def load_mat_key(path: Path, candidates: Sequence[str]) -> tuple[str, np.ndarray]:
    """Load ``path`` and return ``(key, value)`` for the first of ``candidates`` present."""
    data = load_mat(path)
    for key in candidates:
        if key in data:
            return key, data[key]
    found = ", ".join(user_keys(data)) or "none"
    raise DatasetError(path, f"missing key (expected one of {', '.join(candidates)}; found: {found})",
                       "/".join(candidates))


# ------------------------------------------------------------------------------- unpacking
def unwrap(value: Any) -> Any:
    """Strip 1-element object (cell) wrappers: ``array([[x]], dtype=object)`` -> ``x``."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def records(value: Any, path: Path, field: str) -> list[np.void]:
    """Flatten a struct array (or a cell array of struct arrays) into its records, MATLAB order."""
    value = unwrap(value)
    if isinstance(value, np.void) and value.dtype.names:
        return [value]
    if not isinstance(value, np.ndarray):
        raise DatasetError(path, f"expected a struct array, got {type(value).__name__}", field)
    if value.dtype.names:
        return list(value.reshape(-1, order="F"))
    if value.dtype == object:
        return [r for cell in value.reshape(-1, order="F") for r in records(cell, path, field)]
    if value.size == 0:
        return []
    raise DatasetError(path, f"expected a struct array, got dtype {value.dtype}", field)


def get_field(record: np.void, name: str, path: Path, field: str) -> Any:
    """One field of a struct record, with a DatasetError naming ``field`` if it is absent."""
    names = record.dtype.names or ()
    if name not in names:
        raise DatasetError(path, f"struct has no field '{name}' (fields: {', '.join(names)})", field)
    return record[name]


def struct_columns(value: Any, path: Path, field: str, names: Sequence[str]) -> list[np.ndarray]:
    """Fields ``names`` of a struct array as flat object arrays (fast path for long struct arrays)."""
    value = unwrap(value)
    if isinstance(value, np.void):
        value = np.array([value], dtype=value.dtype)
    if not isinstance(value, np.ndarray) or not (value.dtype.names or value.size == 0):
        raise DatasetError(path, f"expected a struct array, got {value!r:.80}", field)
    if value.size == 0:
        return [np.empty(0, dtype=object) for _ in names]
    for name in names:
        if name not in value.dtype.names:
            raise DatasetError(path, f"struct has no field '{name}' (fields: {', '.join(value.dtype.names)})",
                               f"{field}.{name}")
    flat = value.reshape(-1, order="F")
    return [flat[name] for name in names]


def mat_str(value: Any, path: Path, field: str) -> str:
    """A MATLAB char array (possibly inside cells) as a Python str."""
    if type(value) is np.ndarray and value.dtype.kind == "U" and value.size == 1:  # fast path
        return str(value.flat[0])
    value = unwrap(value)
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        return str(value.reshape(-1)[0])
    raise DatasetError(path, f"expected a string, got {value!r:.80}", field)


def mat_strings(value: Any, path: Path, field: str) -> list[str]:
    """A cell array of strings (any orientation) as a list, MATLAB order."""
    value = np.asarray(value)
    if value.dtype.kind == "U":  # a char matrix: one string per row
        return [str(s).rstrip() for s in value.reshape(-1)]
    if value.dtype != object:
        raise DatasetError(path, f"expected a cell array of strings, got dtype {value.dtype}", field)
    return [mat_str(v, path, f"{field}[{i}]") for i, v in enumerate(value.reshape(-1, order="F"))]


def mat_numbers(value: Any, path: Path, field: str) -> np.ndarray:
    """A numeric MATLAB array, flattened (MATLAB order) to float64; empty gives shape (0,)."""
    value = unwrap(value)
    arr = np.asarray(value)
    if arr.size == 0:
        return np.zeros(0, dtype=np.float64)
    if arr.dtype.kind not in "biuf":
        raise DatasetError(path, f"expected numbers, got dtype {arr.dtype}", field)
    return arr.reshape(-1, order="F").astype(np.float64)


# -------------------------------------------------------------------------------- building
def mat_struct(items: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> np.ndarray:
    """A ``1xN`` MATLAB struct array with ``fields`` (in this order) from dicts of values."""
    out = np.empty((1, len(items)), dtype=[(f, object) for f in fields])
    for i, item in enumerate(items):
        for f in fields:
            out[0, i][f] = item[f]
    return out


def mat_cell(items: Sequence[Any], column: bool = True) -> np.ndarray:
    """A MATLAB cell array, ``Nx1`` (column) or ``1xN``."""
    out = np.empty((len(items), 1) if column else (1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out.flat[i] = item
    return out


def mat_scalar(value: float) -> np.ndarray:
    """A 1x1 MATLAB double."""
    return np.array([[float(value)]], dtype=np.float64)


def mat_row(values: Sequence[float] | np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    """A 1xN MATLAB row vector (1x0 when empty, like ``zeros(1, 0)``)."""
    return np.asarray(values, dtype=dtype).reshape(1, -1)


def mat_bytes(variables: Mapping[str, Any]) -> bytes:
    """Serialise variables as a compressed v5 .mat file with a fixed (timestamp-free) header."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, dict(variables), do_compression=True, oned_as="row")
    raw = buf.getvalue()
    return MAT_HEADER + raw[len(MAT_HEADER):]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; dataset files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_mat(path: Path, variables: Mapping[str, Any]) -> None:
    """Atomically write a deterministic .mat file (see :func:`mat_bytes`)."""
    write_bytes_atomic(path, mat_bytes(variables))
