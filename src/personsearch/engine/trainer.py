"""The training loop every recipe shares: ``train(recipe, cfg, out_dir, resume)``."""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils.progress import progress
from . import distributed as D
from .checkpoint import atomic_torch_save, list_checkpoints, load_latest_checkpoint, load_model_state, save_checkpoint
from .config import EngineConfig
from .logging import MetricLogger, jsonable
from .recipe import Auxiliary, Recipe, StepInfo
from .schedule import build_optimizer, build_scheduler, ema_momentum_fn, weight_decay_factor_fn
from .seeding import seed_epoch, seed_everything, set_loader_epoch

LOG = logging.getLogger("personsearch.engine")


@dataclass
class TrainResult:
    """The unwrapped model (eval mode), last evaluate() metrics, per-epoch history, paths."""

    model: nn.Module
    metrics: dict[str, float]
    history: list[dict[str, Any]]
    out_dir: Path
    last_checkpoint: Path | None = None


class _Run:
    """State of one train() call; methods are the loop's phases."""

    def __init__(self, recipe: Recipe, cfg: EngineConfig, out_dir: Path, ctx: D.DistContext):
        self.recipe, self.cfg, self.out_dir, self.ctx = recipe, cfg, out_dir, ctx
        self.ckpt_dir = out_dir / "checkpoints"
        D.autocast_context(cfg.amp, ctx.device)  # validates amp vs device before any work
        seed_everything(cfg.seed)
        recipe.setup(ctx.device, ctx.rank, ctx.world_size)
        self.model = recipe.build_model().to(ctx.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.aux: dict[str, Auxiliary] = self._auxiliaries()
        self.optimizer = build_optimizer(recipe.param_groups(self.model), cfg)
        self._check_optimizer_params()
        for group in self.optimizer.param_groups:
            group.setdefault("initial_weight_decay", group["weight_decay"])
        self.loader = recipe.build_train_loader(ctx.rank, ctx.world_size, cfg.seed)
        try:
            full = len(self.loader)  # type: ignore[arg-type]
        except TypeError as err:
            raise TypeError("the train loader must define __len__ (needed by the lr schedule)") from err
        self.iters_per_epoch = min(full, cfg.max_iters_per_epoch) if cfg.max_iters_per_epoch else full
        self.scheduler = build_scheduler(self.optimizer, cfg, self.iters_per_epoch)
        self.wd_factor = weight_decay_factor_fn(cfg, self.iters_per_epoch)
        self.ema_momentum = ema_momentum_fn(cfg, self.iters_per_epoch)
        self.scaler = torch.amp.GradScaler(ctx.device.type) if cfg.amp == "fp16" else None
        self.epoch, self.step, self.history, self.metrics = 0, 0, [], {}
        self.lr_used = cfg.lr
        self.last_checkpoint: Path | None = None
        self.ddp_model: nn.Module = self.model
        self.logger: MetricLogger | None = None
        self.start_time = time.time()

    def _auxiliaries(self) -> dict[str, Auxiliary]:
        """The recipe's auxiliary modules, checked and moved to the training device."""
        aux = self.recipe.auxiliary_modules() or {}
        for name, item in aux.items():
            if not isinstance(item, Auxiliary):
                raise TypeError(f"auxiliary_modules()['{name}'] must be an engine.Auxiliary, got {type(item).__name__}")
            item.module.to(self.ctx.device)
        return aux

    def _check_optimizer_params(self) -> None:
        """Auxiliary modules are never optimised: refuse a parameter group that holds one of theirs."""
        aux_params = {id(p): name for name, item in self.aux.items() for p in item.module.parameters()}
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                if id(param) in aux_params:
                    raise ValueError(f"param_groups() hands a parameter of auxiliary module "
                                     f"'{aux_params[id(param)]}' to the optimizer; auxiliaries are not optimised")

    # -- checkpoints -------------------------------------------------------------------------
    def restore(self) -> None:
        """Load the newest readable checkpoint (rank 0 picks it, every rank loads it)."""
        found = load_latest_checkpoint(self.ckpt_dir) if self.ctx.is_main else None
        path = D.broadcast_object(str(found[0]) if found else None)
        if path is None:
            if self.ctx.is_main:
                LOG.info("resume requested but no checkpoint in %s; starting fresh", self.ckpt_dir)
            return
        state = found[1] if found else torch.load(path, map_location="cpu", weights_only=False)
        if int(state["epoch"]) > self.cfg.epochs:
            raise ValueError(f"{path} holds the state after {int(state['epoch'])} epochs, more than engine.epochs = "
                             f"{self.cfg.epochs}: resume with engine.epochs >= {int(state['epoch'])}, or train "
                             "into a new run folder")
        load_model_state(self.model, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        saved_aux = state.get("aux") or {}
        for name, item in self.aux.items():
            if item.persistent:
                if name not in saved_aux:
                    raise ValueError(f"{path} has no state for auxiliary module '{name}' (saved: {sorted(saved_aux)})")
                load_model_state(item.module, saved_aux[name], f"{path} (auxiliary '{name}')")
        if state.get("extra") is not None:
            self.recipe.load_extra_state(state["extra"])
        self.epoch, self.step, self.history = int(state["epoch"]), int(state["step"]), list(state["history"])
        self.metrics = dict(self.history[-1].get("eval", {})) if self.history else {}
        self.last_checkpoint = Path(path)
        if self.ctx.is_main:
            LOG.info("resumed from %s (epoch %d, step %d)", path, self.epoch, self.step)

    def save(self) -> None:
        """Rank 0 writes epoch_XXXX.pt (atomic) and prunes; every rank records the path."""
        path = self.ckpt_dir / f"epoch_{self.epoch:04d}.pt"
        if self.ctx.is_main:
            extra = self.recipe.extra_state()
            aux = {name: item.module.state_dict() for name, item in self.aux.items() if item.persistent}
            state = {"model": self.model.state_dict(), "aux": aux, "optimizer": self.optimizer.state_dict(),
                     "scheduler": self.scheduler.state_dict(),
                     "scaler": self.scaler.state_dict() if self.scaler else None,
                     "epoch": self.epoch, "step": self.step, "history": self.history,
                     "config": asdict(self.cfg), "extra": extra, "format": 1}
            save_checkpoint(self.ckpt_dir, self.epoch, state, self.cfg.keep_checkpoints)
        self.last_checkpoint = path

    # -- loop ---------------------------------------------------------------------------------
    def evaluate(self) -> None:
        """recipe.evaluate on rank 0 (unwrapped, eval mode, no_grad); result shared with all ranks."""
        metrics = None
        if self.ctx.is_main:
            self.model.eval()
            with torch.no_grad():
                metrics = jsonable(dict(self.recipe.evaluate(self.model) or {}))
            self.model.train()
        metrics = D.broadcast_object(metrics)
        if metrics is not None:
            self.metrics = metrics
            self.history[-1]["eval"] = metrics
            if self.logger:
                self.logger.log({"epoch": self.epoch - 1, "eval": metrics}, tb_step=max(self.step - 1, 0))

    def train_epoch(self) -> None:
        """One pass over the loader; appends an epoch summary to the history."""
        cfg, ctx, epoch = self.cfg, self.ctx, self.epoch
        seed_epoch(cfg.seed, epoch, ctx.rank)
        set_loader_epoch(self.loader, epoch)
        for item in self.aux.values():
            item.module.train(item.train_mode)
        self.recipe.on_epoch_start(self.model, epoch)
        self.ddp_model.train()
        window: dict[str, float] = {}
        totals: dict[str, float] = {}
        count = seen = 0
        bar = progress(self.iters_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress and ctx.is_main)
        try:
            for it, batch in enumerate(itertools.islice(self.loader, self.iters_per_epoch)):
                scalars = self.train_step(D.prepare_batch(batch, ctx.device, cfg.channels_last), it)
                for key, value in scalars.items():
                    window[key] = window.get(key, 0.0) + value
                    totals[key] = totals.get(key, 0.0) + value
                count, seen = count + 1, seen + 1
                self.step += 1
                bar.update(1)
                if (it + 1) % cfg.log_every == 0 or it + 1 == self.iters_per_epoch:
                    means = {k: v / count for k, v in window.items()}
                    bar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{self.lr_used:.2e}")
                    if self.logger:
                        record = {"epoch": epoch, "iter": it, "step": self.step - 1, "lr": self.lr_used, **means,
                                  "time": round(time.time() - self.start_time, 3)}
                        self.logger.log(record, tb_step=self.step - 1)
                    window, count = {}, 0
        finally:
            bar.close()
        D.sync_buffers(self.model)  # DDP syncs buffers before each forward; make the last one agree too
        self.recipe.on_epoch_end(self.model, epoch)
        summary = {k: v / max(seen, 1) for k, v in totals.items()}
        self.history.append({"epoch": epoch, "step": self.step, "lr": self.lr_used, **summary,
                             "time": round(time.time() - self.start_time, 3)})
        if ctx.is_main:
            LOG.info("epoch %d/%d done: loss %.4f, lr %.2e, %.0f s", epoch + 1, cfg.epochs, summary.get("loss", float("nan")),
                     self.lr_used, time.time() - self.start_time)
        self.epoch += 1

    def train_step(self, batch: Any, it: int) -> dict[str, float]:
        """Forward (autocast), finiteness check on every rank, backward, clip, step, schedule."""
        cfg = self.cfg
        with D.autocast_context(cfg.amp, self.ctx.device):
            loss, scalars = self.recipe.training_step(self.ddp_model, batch, self.epoch)
        loss_value = float(D.all_reduce_mean(loss.detach().float()).item())
        if not torch.isfinite(torch.tensor(loss_value)):
            raise FloatingPointError(
                f"non-finite loss ({loss_value}) at epoch {self.epoch}, iteration {it} (global step {self.step}; "
                "0-based); training stopped - lower the lr, enable grad_clip, or check the inputs and amp setting")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if cfg.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
        self.lr_used = self._lr()
        self.scheduler.step()
        wd_factor = self.wd_factor(self.step + 1)
        for group in self.optimizer.param_groups:  # the value the next step uses
            group["weight_decay"] = group["initial_weight_decay"] * wd_factor
        info = StepInfo(epoch=self.epoch, iteration=it, step=self.step,
                        total_steps=self.cfg.epochs * self.iters_per_epoch, lr=self.lr_used,
                        weight_decay=self.cfg.weight_decay * self.wd_factor(self.step),
                        ema_momentum=self.ema_momentum(self.step))
        self.recipe.after_step(self.model, info)
        return {"loss": loss_value, **{k: float(v) for k, v in (scalars or {}).items() if k != "loss"}}

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def run(self, resume: bool) -> TrainResult:
        """Restore or refuse to overwrite, wrap for DDP, loop over epochs, write model_final.pt."""
        cfg, ctx = self.cfg, self.ctx
        if resume:
            self.restore()
        elif D.broadcast_object(ctx.is_main and bool(list_checkpoints(self.ckpt_dir))):
            raise FileExistsError(f"{self.ckpt_dir} already holds checkpoints; resume=True continues that run, "
                                  "or choose another output directory")
        self.ddp_model = D.wrap_model(self.model, ctx, cfg.find_unused_parameters)
        if ctx.is_main:
            self.logger = MetricLogger(self.out_dir, cfg.tensorboard, self.step, self.epoch)
        self.recipe.on_train_start(self.model)
        try:
            start = self.epoch
            while self.epoch < cfg.epochs:
                self.train_epoch()
                last = self.epoch == cfg.epochs
                if last or (cfg.eval_every and self.epoch % cfg.eval_every == 0):
                    self.evaluate()
                if last or (cfg.checkpoint_every and self.epoch % cfg.checkpoint_every == 0):
                    self.save()
                D.barrier()
            if self.epoch == start and self.history and "eval" not in self.history[-1]:
                self.evaluate()  # resumed a finished run whose last epoch was never evaluated
            if ctx.is_main:
                meta = {"epoch": self.epoch, "step": self.step, "config": asdict(cfg), "metrics": self.metrics,
                        "torch": torch.__version__}
                aux = {name: item.module.state_dict() for name, item in self.aux.items() if item.persistent}
                atomic_torch_save({"model": self.model.state_dict(), "aux": aux, "meta": meta},
                                  self.out_dir / "model_final.pt")
            D.barrier()
        finally:
            if self.logger:
                self.logger.close()
        self.model.eval()
        return TrainResult(self.model, self.metrics, self.history, self.out_dir, self.last_checkpoint)


def train(recipe: Recipe, cfg: EngineConfig, out_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train ``recipe`` under ``cfg``, writing checkpoints and logs to ``out_dir``.

    Single process, or DDP when launched by torchrun (WORLD_SIZE > 1). ``resume`` continues from
    the newest readable checkpoint bit-exactly: python/numpy/torch RNGs are reseeded from
    (seed, epoch, rank) before every epoch, and sampler.set_epoch(epoch) is called. This holds for
    DataLoader workers too, as long as the loader has no ``generator`` of its own and no
    ``persistent_workers`` (both fix worker seeds outside the engine's per-epoch reseeding).
    A fresh run (``resume=False``) refuses an ``out_dir`` that already holds checkpoints
    (FileExistsError). Raises FloatingPointError on a non-finite loss, ValueError for fp16 on CPU.
    Epoch and iteration numbers are 0-based; ``epoch_0003.pt`` holds the state after 3 epochs.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"train() needs a personsearch.engine.Recipe subclass instance, got {type(recipe).__name__}")
    out_dir = Path(out_dir)
    ctx = D.setup_distributed(cfg.device)
    try:
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
        return _Run(recipe, cfg, out_dir, ctx).run(resume)
    finally:
        D.cleanup_distributed(ctx)
