"""Synthetic benchmark generation speed: prints one JSON line.

Runs the requested preset with all cores and, side by side, the same plan rendered by a single
process on a subset, so the parallel speed-up is reported as a ratio against that reference.

    .venv/bin/python benchmarks/synth.py --preset standard
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from personsearch.synthetic.config import make_config
from personsearch.synthetic.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cfg = make_config(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        full = generate(Path(tmp) / "full", cfg, workers=args.workers, progress=False)
        start = time.perf_counter()
        ref = generate(Path(tmp) / "ref", make_config("tiny"), workers=1, progress=False)
        ref_seconds = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "synth", "preset": args.preset, "workers": args.workers,
        "scenes": full["scenes"], "crops": full["crops"], "seconds": full["seconds"],
        "scenes_per_s": full["scenes_per_s"], "images_per_s": full["images_per_s"],
        "reference_single_process_tiny_images_per_s": round((ref["scenes"] + ref["crops"]) / ref_seconds, 1),
        "ratio_images_per_s_vs_single_process": round(full["images_per_s"] / ((ref["scenes"] + ref["crops"]) / ref_seconds), 2),
    }))


if __name__ == "__main__":
    main()
