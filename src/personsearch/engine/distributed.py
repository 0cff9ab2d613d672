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

from ..utils.collectives import (  # noqa: F401  (re-exported: the engine's public API)
    _comm_device,
    all_gather_tensor,
    all_reduce_mean,
    barrier,
    broadcast_object,
    get_rank,
    get_world_size,
    is_dist,
    is_main_process,
    sync_buffers,
)
from ..utils.devices import resolve_device  # noqa: F401


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
