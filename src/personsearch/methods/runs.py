"""Recipes from YAML + overrides, run folders, and trained models loaded back from a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from ..engine.checkpoint import load_model_state, load_weights, read_weights
from ..utils.config import deep_update, load_yaml, merge_into, parse_overrides, to_plain
from ..utils.files import atomic_write_text

CONFIG_NAME = "config.yaml"


def build_config(raw: dict[str, Any], overrides: list[str]) -> Any:
    """The recipe's config dataclass from a YAML mapping and ``key=value`` overrides."""
    from . import recipe_class

    raw = deep_update(dict(raw), parse_overrides(overrides))
    method = raw.get("method", "baseline")
    return merge_into(recipe_class(method).CONFIG(), raw)


def load_recipe_config(recipe: str | Path, overrides: list[str]) -> Any:
    """Config from a recipe YAML file or a shipped recipe's name (e.g. ``baseline``) plus overrides."""
    from . import recipe_file

    return build_config(load_yaml(recipe_file(recipe)), overrides)


def save_run_config(out_dir: Path, cfg: Any) -> None:
    """Write the effective config of a run to ``out_dir/config.yaml``."""
    atomic_write_text(out_dir / CONFIG_NAME, yaml.safe_dump(to_plain(cfg), sort_keys=False))


def train_or_reuse(recipe: str | Path, overrides: list[str], out: Path) -> dict[str, float]:
    """Train ``recipe`` with ``overrides`` into ``out`` and return its final metrics plus
    ``train_minutes``; a run that already holds ``metrics_final.json`` is not retrained, one with
    checkpoints resumes (so an interrupted ablation script picks up where it stopped)."""
    import json
    import time

    from ..engine import train

    done = Path(out) / "metrics_final.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = load_recipe_config(recipe, overrides)
    Path(out).mkdir(parents=True, exist_ok=True)
    save_run_config(Path(out), cfg)
    start = time.time()
    result = train(build_recipe(cfg, Path(out)), cfg.engine, Path(out), resume=(Path(out) / "checkpoints").is_dir())
    metrics = {**result.metrics, "train_minutes": round((time.time() - start) / 60, 1)}
    atomic_write_text(done, json.dumps(metrics, indent=2))
    return metrics


def build_recipe(cfg: Any, out_dir: Path | None = None) -> Any:
    """Instantiate the recipe named by ``cfg.method`` (a ``personsearch.engine.Recipe``)."""
    from . import recipe_class

    return recipe_class(cfg.method)(cfg, report_dir=out_dir)


def run_folder(run: str | Path) -> Path:
    """The run folder of ``run``: a run folder itself, a checkpoint file in it, or one in its checkpoints/."""
    run = Path(run)
    folder = run if run.is_dir() else run.parent.parent if run.parent.name == "checkpoints" else run.parent
    if not (folder / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{run}: not a training run (no {CONFIG_NAME} in {folder})")
    return folder


def load_run(run: str | Path, overrides: list[str] = (), *, need_data: bool = True) -> tuple[Any, Any, torch.nn.Module]:
    """(config, recipe, model with trained weights in eval mode) from a run folder or checkpoint file.

    ``need_data=False`` builds the model without reading the training data: the sizes that depend
    on it (classes, OIM table) come from the checkpoint, so a run can be used on another machine.
    """
    run_dir = run_folder(run)
    cfg = build_config(load_yaml(run_dir / CONFIG_NAME), list(overrides))
    recipe = build_recipe(cfg, run_dir)
    state = None
    if not need_data:
        state = read_weights(run)
        recipe.restore_sizes(state)
    model = recipe.build_model()
    if state is None:
        load_weights(model, run)  # run folder (model_final.pt, else newest checkpoint) or a checkpoint file
    else:
        load_model_state(model, state, str(run))
    return cfg, recipe, model.eval()
