"""Devices and processes: torchrun/DDP helpers, batch placement, autocast. Every function also
works in a plain single process (world size 1)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass
class DistContext:
    """What :func:`setup_distributed` decided: device, ranks, and whether it owns the process group."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` under torchrun -> ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available (use device: cpu or auto)")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def setup_distributed(device: str = "auto") -> DistContext:
    """Resolve the device and, when launched by torchrun (WORLD_SIZE > 1), join the process group
    (gloo on CPU, nccl on CUDA). A group initialised by the caller is reused and left alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if world > 1 and not is_dist():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
        owns = True
    return DistContext(dev, get_rank(), get_world_size(), local_rank, owns)


def cleanup_distributed(ctx: DistContext) -> None:
    """Destroy the process group if :func:`setup_distributed` created it."""
    if ctx.owns_group and is_dist():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistContext, find_unused_parameters: bool = False) -> nn.Module:
    """DistributedDataParallel around ``model`` in a multi-process run; ``model`` itself otherwise."""
    if ctx.world_size <= 1:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def prepare_batch(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor in a (nested dict/list/tuple) batch to ``device``; with ``channels_last``,
    4-D floating tensors also get that memory format. Other objects pass through unchanged."""
    if isinstance(batch, Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: prepare_batch(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(prepare_batch(v, device, channels_last) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(prepare_batch(v, device, channels_last) for v in batch)
    return batch


def autocast_context(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU/CUDA, fp16 autocast on CUDA only (ValueError elsewhere), or nothing."""
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp 'fp16' needs a CUDA device (got {device}); use amp: bf16 on CPU")
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _comm_device() -> torch.device:
    """Where collective scratch tensors live: the current CUDA device for nccl, else CPU."""
    if is_dist() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
