"""Checkpoints: atomic epoch files, a last.json pointer, pruning, and a corruption-tolerant resume."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils.files import atomic_write_text

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch reports a failed write (disk full) as a RuntimeError
        Path(tmp).unlink(missing_ok=True)
        raise OSError(getattr(err, "errno", None) or errno.EIO,
                      f"{path}: cannot save the checkpoint ({err}); earlier checkpoints are kept") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def list_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """``epoch_XXXX.pt`` files in ``ckpt_dir``, oldest first (by epoch number)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _EPOCH_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def completed_epochs(ckpt_dir: str | Path) -> int:
    """Epochs done by the newest ``epoch_XXXX.pt`` in ``ckpt_dir`` (from its name; 0 if none)."""
    found = list_checkpoints(ckpt_dir)
    return int(_EPOCH_FILE.match(found[-1].name).group(1)) if found else 0


def check_resumable(ckpt_dir: str | Path, epochs: int) -> None:
    """ValueError if the run in ``ckpt_dir`` has already trained more than ``epochs`` epochs: resuming
    would keep the later weights under a config that says fewer."""
    done = completed_epochs(ckpt_dir)
    if done > epochs:
        raise ValueError(f"{ckpt_dir} holds a checkpoint after {done} epochs, more than engine.epochs = {epochs}: "
                         f"resume with engine.epochs >= {done}, or train into a new run folder")


def save_checkpoint(ckpt_dir: str | Path, epoch: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` to ``ckpt_dir/epoch_{epoch:04d}.pt`` atomically, point ``last.json`` at it,
    and delete all but the newest ``keep`` epoch files (``keep`` 0 keeps all)."""
    ckpt_dir = Path(ckpt_dir)
    path = atomic_torch_save(state, ckpt_dir / f"epoch_{epoch:04d}.pt")
    atomic_write_text(ckpt_dir / "last.json", json.dumps({"file": path.name, "epoch": epoch}) + "\n")
    if keep > 0:
        for old in list_checkpoints(ckpt_dir)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def load_latest_checkpoint(ckpt_dir: str | Path, map_location: Any = "cpu",
                           quarantine: bool = True) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, as (path, state); None when there is none.

    Files are tried newest first; one that fails to load (truncated, garbage) is reported with a
    warning and the previous one is used instead. With ``quarantine`` such a file is renamed to
    ``*.pt.corrupt`` so that it is neither picked again nor counted when pruning.
    """
    for path in reversed(list_checkpoints(ckpt_dir)):
        try:
            state = torch.load(path, map_location=map_location, weights_only=False)
            if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
                raise ValueError("not an engine checkpoint (no 'model'/'epoch' entries)")
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped, loudly
            moved = f"; renamed to {path.name}.corrupt" if quarantine else ""
            warnings.warn(f"checkpoint {path} cannot be loaded ({type(err).__name__}: {err}){moved}; "
                          "falling back to the previous checkpoint", RuntimeWarning, stacklevel=2)
            if quarantine:
                os.replace(path, path.with_name(path.name + ".corrupt"))
            continue
        return path, state
    return None


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise ValueError naming missing, unexpected and shape-mismatched keys, if any."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(own[k].shape)
    )
    problems = [(label, items) for label, items in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes)) if items]
    if problems:
        text = "; ".join(f"{label} ({len(items)}): {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}"
                         for label, items in problems)
        raise ValueError(f"{source} does not match the model: {text}")


def load_model_state(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """``model.load_state_dict`` after :func:`check_state_dict` (clear errors, then strict load)."""
    check_state_dict(model, state_dict, source)
    model.load_state_dict(state_dict)


def resolve_weights_file(path: str | Path) -> Path:
    """The weights file meant by a run dir, a checkpoints dir, ``last.json``, an ``epoch_XXXX.pt``
    or ``model_final.pt`` (a run's final weights first, else its newest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        final = path / "model_final.pt"
        path = final if final.is_file() else (path / "checkpoints" if (path / "checkpoints").is_dir() else path) / "last.json"
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found")
        path = path.parent / json.loads(path.read_text())["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    return path


def _load_file(path: str | Path, map_location: Any) -> tuple[Path, Any]:
    file = resolve_weights_file(path)
    return file, torch.load(file, map_location=map_location, weights_only=False)


def read_weights(path: str | Path, map_location: Any = "cpu") -> dict[str, torch.Tensor]:
    """The model state dict stored at ``path`` (anything :func:`resolve_weights_file` accepts)."""
    _, state = _load_file(path, map_location)
    return state["model"] if isinstance(state, dict) and "model" in state else state


def load_weights(model: nn.Module, path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load model weights from anything :func:`resolve_weights_file` accepts; returns the whole
    loaded file (meta, history, ...)."""
    file, state = _load_file(path, map_location)
    load_model_state(model, state["model"] if isinstance(state, dict) and "model" in state else state, str(file))
    return state
