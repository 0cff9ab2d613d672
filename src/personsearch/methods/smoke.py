"""Smoke run of a recipe: one training step, one evaluation, a checkpoint round-trip, its inference path.

The recipe contract test runs it for every shipped recipe on CPU; ``tools/gpu_smoke.sh`` runs it
on a CUDA machine with fp16 and bf16 autocast:

    python -m personsearch.methods.smoke --synth OUT/tiny --device cuda --amp fp16,bf16
    {"recipe": "nae", "device": "cuda:0", "amp": "fp16", "ok": true, "loss": 7.1, ...}   # one line each
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine import train
from ..engine.checkpoint import read_weights
from ..utils.devices import model_device
from . import recipe_class, shipped_recipes
from .runs import build_recipe, load_recipe_config, load_run, save_run_config


def smoke_overrides(recipe: str, synth_root: Path, work_dir: Path, device: str, amp: str) -> list[str]:
    """The recipe's own tiny-data overrides plus one-step engine settings."""
    method = load_recipe_config(recipe, []).method
    return [*recipe_class(method).smoke_overrides(Path(synth_root), Path(work_dir)), f"engine.device={device}",
            f"engine.amp={amp}",
            "engine.epochs=1", "engine.max_iters_per_epoch=1", "engine.progress=false", "engine.tensorboard=false",
            "engine.warmup_epochs=0", "engine.channels_last=false"]


def _check_inference(recipe: Any, model: torch.nn.Module, device: torch.device) -> dict[str, Any]:
    """Run the run's inference forms once on a random crop batch and, end to end, on a test scene."""
    forms = recipe.inference(model.to(device))
    h, w = forms.input_size
    out: dict[str, Any] = {"input_size": [h, w]}
    if forms.crop_embedder is not None:
        crops = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            emb = forms.crop_embedder(crops)
        emb = emb if isinstance(emb, torch.Tensor) else emb[0]
        if emb.ndim != 2 or emb.shape[0] != 2 or not bool(torch.isfinite(emb).all()):
            raise AssertionError(f"crop embedder returned {tuple(emb.shape)} / non-finite values")
        out["dim"] = int(emb.shape[1])
    for kind, net, keys in (("scene_people", forms.scene_model, {"boxes", "scores", "embeddings"}),
                            ("detected_people", forms.detector, {"boxes", "scores"})):
        if net is None:
            continue
        from .search_common.recipe import image_tensor

        scene = next(iter(recipe.dataset.gallery))
        with torch.no_grad():
            people = net([image_tensor(scene.path, device)])[0]
        if not keys <= set(people):
            raise AssertionError(f"{kind}: the model returned keys {sorted(people)}")
        out[kind] = int(len(people["boxes"]))
    return out


def smoke_recipe(recipe: str, synth_root: Path, out_dir: Path, device: str = "auto", amp: str = "none") -> dict:
    """Train ``recipe`` (a shipped name or YAML) for one step on the tiny benchmark at ``synth_root``,
    evaluate, reload the run from disk (weights must match exactly), build and run its inference
    forms. Returns a JSON-able summary; raises on any failure."""
    start = time.time()
    cfg = load_recipe_config(recipe, smoke_overrides(recipe, synth_root, out_dir.parent, device, amp))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_run_config(out_dir, cfg)
    result = train(build_recipe(cfg, out_dir), cfg.engine, out_dir)
    if not result.metrics:
        raise AssertionError("evaluate() returned no metrics")
    bad = {k: v for k, v in result.metrics.items() if not np.isfinite(v)}
    if bad:
        raise AssertionError(f"non-finite metrics: {bad}")
    _, reloaded, model = load_run(out_dir, need_data=False)
    saved = read_weights(out_dir)
    for key, value in model.state_dict().items():
        if not torch.equal(value, saved[key]):
            raise AssertionError(f"reloaded weight {key} differs from the saved one")
    trained = {k: v.cpu() for k, v in result.model.state_dict().items()}
    if any(not torch.equal(trained[k], v) for k, v in saved.items()):
        raise AssertionError("model_final.pt does not hold the trained weights")
    info = _check_inference(reloaded, model, model_device(result.model))
    loss = result.history[-1]["loss"]
    return {"recipe": str(recipe), "method": cfg.method, "device": str(model_device(result.model)), "amp": amp,
            "ok": True, "loss": round(float(loss), 4), "metrics": sorted(result.metrics), **info,
            "seconds": round(time.time() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One step, one evaluation, a checkpoint round-trip and the "
                                                 "inference path of every shipped recipe; one JSON line each.")
    parser.add_argument("--synth", type=Path, required=True, help="a `personsearch synth --preset tiny` folder")
    parser.add_argument("--recipes", default="all", help="comma-separated shipped recipe names (default all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="none", help="comma-separated: none, bf16, fp16 (fp16: CUDA only)")
    parser.add_argument("--out", type=Path, default=None, help="run folders (default: a temporary folder)")
    args = parser.parse_args(argv)
    names = list(shipped_recipes()) if args.recipes == "all" else args.recipes.split(",")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for name in names:
            for amp in args.amp.split(","):
                try:
                    line = smoke_recipe(name, args.synth, root / f"{name}-{amp}", args.device, amp)
                except Exception as err:  # noqa: BLE001 - reported per recipe, the others still run
                    failures += 1
                    line = {"recipe": name, "amp": amp, "ok": False, "error": f"{type(err).__name__}: {err}",
                            "where": traceback.format_exc().strip().splitlines()[-3:]}
                print(json.dumps(line), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
