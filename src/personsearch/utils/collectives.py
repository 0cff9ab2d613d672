"""Collectives: rank/world queries and the few all-reduce / all-gather / broadcast operations the
toolkit uses (engine, OIM memories, teacher-student recipes). Every function also works in a plain
single process (world size 1), where it is an identity.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def is_dist() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Global rank (0 outside DDP)."""
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    """Number of processes (1 outside DDP)."""
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank; no-op outside DDP."""
    if is_dist():
        dist.barrier()


def all_reduce_mean(value: torch.Tensor | float) -> torch.Tensor | float:
    """Mean of ``value`` over ranks (a new tensor, or a float for a float input); input unchanged."""
    if not is_dist():
        return value
    is_float = not isinstance(value, torch.Tensor)
    tensor = torch.tensor(float(value), dtype=torch.float64, device=_comm_device()) if is_float else value.detach().clone()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor = tensor / dist.get_world_size()
    return float(tensor.item()) if is_float else tensor


def all_gather_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, in rank order (first dims may differ).
    No gradient flows through the result. Outside DDP, returns ``tensor`` itself."""
    if not is_dist():
        return tensor
    world = dist.get_world_size()
    tensor = tensor.detach().contiguous()
    size = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    chunks = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(chunks, padded)
    return torch.cat([chunk[:n] for chunk, n in zip(chunks, counts)], dim=0)


def sync_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy every buffer (e.g. BatchNorm running stats) from rank ``src`` to all ranks."""
    if is_dist():
        for buf in model.buffers():
            dist.broadcast(buf, src=src)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (any picklable object)."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def _comm_device() -> torch.device:
    """Where collective scratch tensors live: the current CUDA device for nccl, else CPU."""
    if is_dist() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
