"""The one device resolver: ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` (or a torch.device) -> ``torch.device``."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` under torchrun -> ``cuda:LOCAL_RANK``.

    Raises ValueError when CUDA is asked for but not available.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available (use device: cpu or auto)")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` lives: the device of its first parameter (or buffer); CPU for an empty module."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")
