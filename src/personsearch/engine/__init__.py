"""The training engine every recipe shares: the recipe contract, loop and hooks, schedules, AMP,
DDP (torchrun), checkpoints with auxiliary modules (teachers, memories), logs.

    from personsearch.engine import EngineConfig, Recipe, train
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
from .recipe import HOOKS, Auxiliary, InferenceModels, Recipe, StepInfo
from .schedule import (
    build_optimizer,
    build_scheduler,
    cosine_value,
    ema_momentum_fn,
    lr_factor_fn,
    weight_decay_factor_fn,
)
from .seeding import epoch_seed, seed_epoch, seed_everything, set_loader_epoch
from .teachers import EmaTeacher, freeze
from .trainer import TrainResult, train

__all__ = [
    "EngineConfig", "Recipe", "TrainResult", "train", "HOOKS", "Auxiliary", "InferenceModels", "StepInfo",
    "EmaTeacher", "freeze", "cosine_value", "ema_momentum_fn", "weight_decay_factor_fn",
    "get_rank", "get_world_size", "is_main_process", "is_dist", "barrier", "all_reduce_mean",
    "all_gather_tensor", "broadcast_object", "resolve_device", "sync_buffers", "unwrap_model", "prepare_batch", "autocast_context",
    "build_optimizer", "build_scheduler", "lr_factor_fn",
    "seed_everything", "seed_epoch", "epoch_seed", "set_loader_epoch",
    "MetricLogger", "atomic_torch_save", "save_checkpoint", "list_checkpoints", "load_latest_checkpoint",
    "check_state_dict", "load_model_state", "load_weights",
]
