"""Shared by train/eval/extract: recipe configs from YAML + overrides, run folders, model weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from ..engine.checkpoint import load_weights
from ..utils.config import deep_update, load_yaml, merge_into, parse_overrides, to_plain
from ..utils.files import atomic_write_text

CONFIG_NAME = "config.yaml"


def add_override_argument(parser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe setting, e.g. --set engine.epochs=5 --set data.root=DIR")


def build_config(raw: dict[str, Any], overrides: list[str]) -> Any:
    """The recipe's config dataclass from a YAML mapping and ``key=value`` overrides."""
    from ..methods import recipe_class

    raw = deep_update(dict(raw), parse_overrides(overrides))
    method = raw.get("method", "baseline")
    return merge_into(recipe_class(method).CONFIG(), raw)


def load_recipe_config(path: str | Path, overrides: list[str]) -> Any:
    """Config from a recipe YAML file (e.g. configs/reid/baseline.yaml) plus overrides."""
    return build_config(load_yaml(path), overrides)


def save_run_config(out_dir: Path, cfg: Any) -> None:
    """Write the effective config of a run to ``out_dir/config.yaml``."""
    atomic_write_text(out_dir / CONFIG_NAME, yaml.safe_dump(to_plain(cfg), sort_keys=False))


def build_recipe(cfg: Any, out_dir: Path | None = None) -> Any:
    """Instantiate the recipe named by ``cfg.method``."""
    from ..methods import recipe_class

    return recipe_class(cfg.method)(cfg, report_dir=out_dir)


def load_run(run: Path, overrides: list[str]) -> tuple[Any, Any, torch.nn.Module]:
    """(config, recipe, model with trained weights in eval mode) from a run folder."""
    run_dir = run if run.is_dir() else run.parent.parent if run.parent.name == "checkpoints" else run.parent
    cfg = build_config(load_yaml(run_dir / CONFIG_NAME), overrides)
    recipe = build_recipe(cfg, run_dir)
    model = recipe.build_model()
    load_weights(model, run)  # run folder (model_final.pt, else newest checkpoint) or a checkpoint file
    return cfg, recipe, model.eval()
