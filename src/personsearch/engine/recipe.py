"""The recipe contract: what every method gives the engine, the CLI and the inference pipelines.

A method is a subclass of :class:`Recipe`. It must provide ``build_model``, ``build_train_loader``,
``training_step`` and ``evaluate``; everything else has a working default. The engine calls the
hooks by their names in :data:`HOOKS` at fixed points of the loop; a method defining a method that
looks like a hook (``on_*``, ``after_*``, ``before_*``) under another name is refused when the class
is defined, so a misspelt hook fails loudly instead of being silently ignored.

    class MyRecipe(Recipe):
        CONFIG = MyConfig                         # dataclass: YAML recipes merge into it
        def build_model(self): ...
        def build_train_loader(self, rank, world_size, seed): ...
        def training_step(self, model, batch, epoch): return loss, {"loss_id": ...}
        def evaluate(self, model): return {"mAP": ...}
        def auxiliary_modules(self): return {"teacher": Auxiliary(self.teacher)}   # optional
        def after_step(self, model, info): self.teacher.update(unwrap_model(model), info.ema_momentum)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable

import torch
from torch import Tensor, nn

HOOKS: tuple[str, ...] = ("on_train_start", "on_epoch_start", "after_step", "on_epoch_end")
"""Engine hooks, in the order the loop reaches them (after_step: after every optimizer step)."""

_HOOK_PREFIXES = ("on_", "after_", "before_")


@dataclass(frozen=True)
class StepInfo:
    """Where the loop is, handed to ``after_step``: the step just taken and the schedules' values."""

    epoch: int  # 0-based
    iteration: int  # 0-based, within the epoch
    step: int  # 0-based global index of the optimizer step just taken
    total_steps: int
    lr: float  # learning rate of the first parameter group at this step
    weight_decay: float  # weight decay factor x the config's weight_decay at this step
    ema_momentum: float  # the EMA momentum schedule's value for this step


@dataclass
class Auxiliary:
    """A module a recipe trains *beside* the model: a frozen or EMA teacher, a memory bank.

    The engine moves it to the training device, keeps its parameters out of the optimizer, puts it
    in train or eval mode (``train_mode``) before every epoch and, when ``persistent``, saves its
    state in every checkpoint and restores it on resume (a frozen teacher loaded from its own run
    folder need not be saved).
    """

    module: nn.Module
    persistent: bool = True
    train_mode: bool = False


@dataclass
class InferenceModels:
    """What a trained run becomes at inference.

    ``crop_embedder``: (B, 3, H, W) crops, ImageNet-normalised at ``input_size`` -> (B, D) embeddings
    (None for a detector run). ``scene_model``: for end-to-end person search, the model that takes
    whole images (a list of (3, H, W) tensors in [0, 1]) and returns boxes, scores and embeddings.
    ``detector``: whole images -> ``[{"boxes", "scores"}]`` (a detector run, or a two-step run's
    detector); a crop embedder without a detector goes behind the shipped person detector.
    """

    crop_embedder: nn.Module | None
    input_size: tuple[int, int]
    scene_model: nn.Module | None = None
    detector: nn.Module | None = None


class Recipe:
    """Base class of every method (see the module docstring). ``self.device``, ``self.rank`` and
    ``self.world_size`` are set by :meth:`setup` before ``build_model`` (CPU, rank 0 of 1 outside
    the engine)."""

    CONFIG: ClassVar[type]

    def __init__(self, cfg: Any, report_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.report_dir = report_dir
        self.device = torch.device("cpu")
        self.rank, self.world_size = 0, 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if callable(value) and name.startswith(_HOOK_PREFIXES) and name not in HOOKS:
                raise TypeError(f"{cls.__name__}.{name} looks like an engine hook but is not one; "
                                f"the hooks are: {', '.join(HOOKS)}")

    # -- required ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        """The network to train (on CPU; the engine moves it)."""
        raise NotImplementedError(f"{type(self).__name__} must define build_model()")

    def build_train_loader(self, rank: int, world_size: int, seed: int) -> Iterable:
        """The training batches of this rank (must define ``__len__``; ``set_epoch`` is called if present)."""
        raise NotImplementedError(f"{type(self).__name__} must define build_train_loader()")

    def training_step(self, model: nn.Module, batch: Any, epoch: int) -> tuple[Tensor, dict[str, float]]:
        """(loss, scalars to log) of one batch; ``model`` may be DDP-wrapped, ``batch`` is on the device."""
        raise NotImplementedError(f"{type(self).__name__} must define training_step()")

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics of ``model`` (unwrapped, eval mode, no_grad, on its own device; rank 0 only)."""
        raise NotImplementedError(f"{type(self).__name__} must define evaluate()")

    # -- optional, with defaults ------------------------------------------------------------------
    def setup(self, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        """Told by the engine (before ``build_model``) where and as which rank the recipe runs."""
        self.device, self.rank, self.world_size = torch.device(device), rank, world_size

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Optimizer parameter groups (a group's ``lr`` / ``weight_decay`` override the engine's)."""
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def auxiliary_modules(self) -> dict[str, Auxiliary]:
        """Modules trained beside the model (teachers, memories); called once, after ``build_model``."""
        return {}

    def restore_sizes(self, state_dict: dict[str, Tensor]) -> None:
        """Take data-dependent sizes (classes, memories) from trained weights instead of the dataset."""

    def extra_state(self) -> dict[str, Any] | None:
        """Picklable state saved in checkpoints (rank 0) besides model, optimizer and auxiliaries."""
        return None

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned (every rank, on resume)."""

    def on_train_start(self, model: nn.Module) -> None:
        """Once per ``train()`` call, after a resume restored the state (unwrapped model)."""

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Before the first batch of ``epoch`` (unwrapped model)."""

    def after_step(self, model: nn.Module, info: StepInfo) -> None:
        """After every optimizer step and schedule update (unwrapped model): EMA updates, queues."""

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        """After the last batch of ``epoch``, before evaluation and the checkpoint (unwrapped model)."""

    # -- inference ------------------------------------------------------------------------------
    def inference(self, model: nn.Module) -> InferenceModels:
        """The inference form of a trained ``model`` (eval mode). Crop models: the model itself."""
        return InferenceModels(crop_embedder=model.eval(), input_size=self.input_size)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) that crops are resized to (``data.height`` / ``data.width``)."""
        data = self.cfg.data
        return int(data.height), int(data.width)

    @classmethod
    def smoke_overrides(cls, synth_root: Path, work_dir: Path) -> list[str]:
        """``--set`` overrides that run this recipe on the tiny synthetic benchmark at ``synth_root``
        (a recipe that needs another run first, e.g. a detector, makes it under ``work_dir``)."""
        raise NotImplementedError(f"{cls.__name__} must define smoke_overrides()")


def hooks_of(recipe: Recipe) -> dict[str, Any]:
    """The bound hook methods of ``recipe`` (all of :data:`HOOKS`; the defaults do nothing)."""
    return {name: getattr(recipe, name) for name in HOOKS}
