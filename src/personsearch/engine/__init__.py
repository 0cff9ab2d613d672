"""The training engine every recipe shares: loop, schedules, AMP, DDP (torchrun), checkpoints, logs.

    from personsearch.engine import EngineConfig, train
    result = train(my_recipe, EngineConfig(epochs=60), "runs/x", resume=True)
"""

from .checkpoint import (
    atomic_torch_save,
    check_state_dict,
    list_checkpoints,
    load_latest_checkpoint,
    load_model_state,
    load_weights,
    save_checkpoint,
)
from .config import EngineConfig
from .distributed import (
    all_gather_tensor,
    all_reduce_mean,
    autocast_context,
    barrier,
    broadcast_object,
    get_rank,
    get_world_size,
    is_dist,
    is_main_process,
    prepare_batch,
    resolve_device,
    sync_buffers,
    unwrap_model,
)
from .logging import MetricLogger
from .schedule import build_optimizer, build_scheduler, lr_factor_fn
from .seeding import epoch_seed, seed_epoch, seed_everything, set_loader_epoch
from .trainer import Recipe, TrainResult, train

__all__ = [
    "EngineConfig", "Recipe", "TrainResult", "train",
    "get_rank", "get_world_size", "is_main_process", "is_dist", "barrier", "all_reduce_mean",
    "all_gather_tensor", "broadcast_object", "resolve_device", "sync_buffers", "unwrap_model", "prepare_batch", "autocast_context",
    "build_optimizer", "build_scheduler", "lr_factor_fn",
    "seed_everything", "seed_epoch", "epoch_seed", "set_loader_epoch",
    "MetricLogger", "atomic_torch_save", "save_checkpoint", "list_checkpoints", "load_latest_checkpoint",
    "check_state_dict", "load_model_state", "load_weights",
]
