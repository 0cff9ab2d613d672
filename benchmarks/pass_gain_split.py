"""Where a PASS (or DINO) pre-training's fine-tuning gain lives: its part-token ViT split into the stem
and the transformer, each fine-tuned (``pass_reid``) beside a fresh initialisation of the other part;
one JSON line.

Rows: ``transformer``: the run's transformer (blocks, tokens, position vectors, the stem's projection)
on the ImageNet stem body; ``stem``: the run's stem (body with its BatchNorm statistics, projection)
under a freshly initialised transformer (seed ``--init-seed``). Compare them with ``pass_ablation``'s
``random_reid`` and ``pass_reid`` rows at the same fine-tuning settings (the README's split table):

    .venv/bin/python benchmarks/pass_gain_split.py --pretrained runs/pass_stem/pass \
        --data outputs/demo/synth-standard-0 --out runs/pass_split --set engine.epochs=6
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from personsearch.engine.checkpoint import atomic_torch_save, read_weights  # noqa: E402
from personsearch.methods.pass_finetune.model import PRETRAINED_PREFIXES  # noqa: E402
from personsearch.methods.runs import build_recipe, load_recipe_config, train_or_reuse  # noqa: E402

TEACHER = PRETRAINED_PREFIXES[0]  # a pass/dino run's teacher backbone, as fine-tuning reads it
STEM = "vit.patch_embed."  # the stem: MobileNetV2 body + projection (or the 16x16 patch embedding)
BODY = STEM + "body."  # the MobileNetV2 part alone


def split_states(pretrained: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor]) -> dict[str, dict]:
    """The two mixed backbones: ``transformer`` (pre-trained, stem body from ``fresh``) and ``stem``
    (``fresh``, stem from pre-trained). Both have exactly ``fresh``'s keys."""
    if set(pretrained) != set(fresh):
        raise ValueError(f"pre-trained and fresh backbones differ in keys: {sorted(set(pretrained) ^ set(fresh))[:3]}")
    return {"transformer": {k: (fresh if k.startswith(BODY) else pretrained)[k] for k in fresh},
            "stem": {k: (pretrained if k.startswith(STEM) else fresh)[k] for k in fresh}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", type=Path, required=True, help="a pass or dino run folder")
    parser.add_argument("--data", type=Path, required=True, help="a synthetic benchmark folder (market1501/)")
    parser.add_argument("--out", type=Path, default=Path("runs/pass_split"))
    parser.add_argument("--init-seed", type=int, default=1, help="seed of the fresh initialisation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    args = parser.parse_args(argv)
    state = {k[len(TEACHER):]: v for k, v in read_weights(args.pretrained).items() if k.startswith(TEACHER)}
    if "part_tokens" not in state:
        parser.error(f"{args.pretrained}: no pre-trained part-token ViT (keys {TEACHER}...)")
    overrides = [f"data.root={args.data / 'market1501'}", "engine.progress=false",
                 f"model.num_parts={state['part_tokens'].shape[1]}", *args.set]
    torch.manual_seed(args.init_seed)
    fresh = build_recipe(load_recipe_config("pass_reid", [*overrides, "model.weights=null"])).build_model()
    rows = {}
    for name, backbone in split_states(state, fresh.backbone.state_dict()).items():
        weights = atomic_torch_save({"model": {f"backbone.{k}": v for k, v in backbone.items()}},
                                    args.out / f"{name}_init.pt")
        rows[name] = train_or_reuse("pass_reid", [*overrides, f"model.weights={weights}"], args.out / name)
    print(json.dumps({"pretrained": str(args.pretrained), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
