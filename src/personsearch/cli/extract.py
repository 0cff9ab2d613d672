"""`personsearch extract RUN --images DIR --out FEATS.npz`: embeddings of every image in a folder.

Any run works: a ReID run embeds the crops with its network; an end-to-end person search run
embeds each crop as an image whose one person box is the whole crop (its query path).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from ..methods.runs import load_run
from .options import add_override_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder (with config.yaml) or a checkpoint file inside one")
    parser.add_argument("--images", type=Path, required=True, help="folder of person crops (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz with 'features' and 'paths'")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of a sentence")
    add_override_argument(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data.folder import list_images
    from ..data.transforms import build_test_transform
    from ..inference.extract import ExtractConfig, extract_from_paths
    from ..utils.files import atomic_write_bytes

    _, recipe, model = load_run(args.run, args.overrides, need_data=False)
    forms = recipe.inference(model)
    paths = list_images(args.images)
    if not paths:
        raise ValueError(f"{args.images}: no images found")
    ext = ExtractConfig(batch_size=args.batch_size, precision=args.precision, progress=True, device=args.device)
    feats = extract_from_paths(forms.crop_embedder, paths, build_test_transform(*forms.input_size), ext)
    buffer = io.BytesIO()
    np.savez(buffer, features=feats, paths=np.asarray([str(p) for p in paths]))
    atomic_write_bytes(args.out, buffer.getvalue())
    if args.json:
        print(json.dumps({"out": str(args.out), "images": len(paths), "dim": int(feats.shape[1]),
                          "input_size": list(forms.input_size)}))
    else:
        print(f"wrote {len(paths)} x {feats.shape[1]} features to {args.out}")
    return 0
