"""EngineConfig: every knob of the shared training loop, as a plain dataclass (YAML merges into it)."""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("multistep", "cosine", "constant")
AMP_MODES = ("none", "bf16", "fp16")


@dataclass
class EngineConfig:
    """Settings of :func:`personsearch.engine.train`. Epochs and iterations are 0-based indices in
    code and logs; checkpoint files are named by the number of completed epochs (epoch_0001.pt)."""

    epochs: int = 10
    max_iters_per_epoch: int = 0  # > 0: stop each epoch after this many iterations (smoke runs)
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    weight_decay_end: float | None = None  # cosine schedule of weight decay to this value (PASS); None = constant
    ema_momentum: float = 0.996  # EMA teacher momentum at step 0 (StepInfo.ema_momentum, for after_step)
    ema_momentum_end: float = 1.0  # ... rising to this at the last step along a cosine (DINO / PASS)
    momentum: float = 0.9  # sgd only
    schedule: str = "multistep"  # multistep | cosine | constant
    milestones: tuple[int, ...] = (40, 70)  # epochs at which lr *= gamma
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warmup, per iteration, from warmup_factor * lr
    warmup_factor: float = 0.01
    min_lr: float = 0.0  # cosine floor
    grad_clip: float | None = None  # max global gradient norm
    amp: str = "none"  # none | bf16 | fp16 (fp16: CUDA only, with GradScaler)
    channels_last: bool = False
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 20  # iterations
    eval_every: int = 0  # epochs; 0 = only at the end
    checkpoint_every: int = 1  # epochs; 0 = only at the end
    keep_checkpoints: int = 2  # 0 = keep all
    tensorboard: bool = True
    progress: bool = True
    find_unused_parameters: bool = False  # DDP: set for models with branches unused in some steps

    def __post_init__(self) -> None:
        self.milestones = tuple(int(m) for m in (self.milestones or ()))
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("amp", self.amp, AMP_MODES),
        ):
            if value not in allowed:
                raise ValueError(f"engine.{name} must be one of {', '.join(allowed)}; got {value!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"engine.device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        for name in ("epochs", "eval_every", "checkpoint_every", "keep_checkpoints", "max_iters_per_epoch"):
            if getattr(self, name) < 0:
                raise ValueError(f"engine.{name} must be >= 0; got {getattr(self, name)}")
        if self.log_every < 1:
            raise ValueError(f"engine.log_every must be >= 1; got {self.log_every}")
        if self.lr <= 0 or self.warmup_epochs < 0 or not 0 <= self.warmup_factor <= 1:
            raise ValueError("engine.lr must be > 0, warmup_epochs >= 0 and 0 <= warmup_factor <= 1")
        if self.weight_decay < 0 or (self.weight_decay_end is not None and self.weight_decay_end < 0):
            raise ValueError("engine.weight_decay and engine.weight_decay_end must be >= 0")
        if self.weight_decay_end is not None and self.weight_decay == 0 and self.weight_decay_end != 0:
            raise ValueError("engine.weight_decay_end needs a non-zero engine.weight_decay (the schedule scales it)")
        for name in ("ema_momentum", "ema_momentum_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"engine.{name} must be in [0, 1]; got {getattr(self, name)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"engine.grad_clip must be > 0 or null; got {self.grad_clip}")
