"""`personsearch demo`: the main job on the embedded synthetic benchmark.

1. generate the synthetic benchmark (cached by its settings);
2. read every output back with the dataset readers, checking every image and box;
3. train the ReID baseline recipe on its Market-format crops (resumes if interrupted);
4. evaluate it (with k-reciprocal re-ranking) and write a ranked-list HTML report;
5. write a contact sheet of the benchmark;
6. search real footage with no training: index Debian's vtest.avi with the shipped pretrained
   two-step pipeline and query it with a person from one frame (HTML report), if the video is there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

CHECKS = (  # (output folder, reader format, path handed to the reader)
    ("market1501", "market1501", "market1501"),
    ("cuhk_sysu", "cuhk-sysu", "cuhk_sysu"),
    ("prw", "prw", "prw"),
    ("detection", "coco", "detection/annotations/instances_person.json"),
    ("unlabeled", "unlabeled", "unlabeled"),
)
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # Debian package opencv-doc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="working folder")
    parser.add_argument("--preset", default="standard", help="synthetic benchmark preset (tiny for a quick look)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="render processes")
    parser.add_argument("--recipe", default="baseline",
                        help="ReID recipe to train: a shipped recipe's name (default baseline) or a YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe setting, e.g. --set engine.epochs=3")


def _cached(folder: Path, cfg_dict: dict) -> bool:
    from ..synthetic.generate import MARKER

    marker = folder / MARKER
    return marker.is_file() and (yaml.safe_load(marker.read_text()) or {}).get("config") == cfg_dict


def _synthesize(args: argparse.Namespace, folder: Path) -> int:
    from ..data.check import check_dataset
    from ..synthetic.config import config_to_dict, make_config
    from ..synthetic.generate import generate

    cfg = make_config(args.preset, seed=args.seed)
    print(f"== 1/4 synthetic benchmark ({args.preset}, seed {args.seed}) -> {folder}")
    if _cached(folder, config_to_dict(cfg)):
        print("   already generated with these settings; reusing it")
    else:
        print("   " + json.dumps(generate(folder, cfg, workers=args.workers)))
    print("== 2/4 reading every output back with the dataset readers, checking every image and box")
    failed = 0
    for name, fmt, rel in CHECKS:
        report = check_dataset(fmt, folder / rel, progress=False)
        status = "OK" if report.ok else f"{len(report.problems)} PROBLEMS"
        print(f"   {name:<11} {status:<10} " + ", ".join(f"{k}={v}" for k, v in report.summary.items() if k != "dataset"))
        for problem in report.problems[:5]:
            print(f"      {problem}")
        failed += not report.ok
    return failed


def _train_reid(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    from ..engine import train
    from ..methods.runs import build_recipe, load_recipe_config, save_run_config
    from .evaluate import format_table

    run = args.out / f"reid-{Path(args.recipe).stem}-{args.preset}-{args.seed}"
    overrides = [f"data.root={folder / 'market1501'}", "eval.report_queries=12", *args.overrides]
    cfg = load_recipe_config(args.recipe, overrides)
    print(f"== 3/4 training the ReID recipe {args.recipe} -> {run}")
    run.mkdir(parents=True, exist_ok=True)
    save_run_config(run, cfg)
    result = train(build_recipe(cfg, run), cfg.engine, run, resume=True)
    print(f"== 4/4 evaluation on the query/gallery split ({cfg.eval.metric} distance)")
    print("   " + format_table(result.metrics).replace("\n", "\n   "))
    print(f"   ranked lists: {run / 'ranked_lists.html'}; metrics log: {run / 'metrics.jsonl'}")
    return result.metrics


def _search_video(out: Path, video: Path = VTEST, every: int = 10, query_frame: int = 100) -> int:
    """Index ``video`` with the pretrained pipeline (resumes), query with the best person of one frame."""
    import cv2

    from . import main as cli_main

    if not video.is_file():
        print(f"== search on real video skipped: {video} is absent (apt-get install opencv-doc)")
        return 0
    index, query, report = out / "vtest-index", out / "vtest-query.jpg", out / "vtest-hits.html"
    print(f"== search on real video, no training: indexing every {every}th frame of {video} -> {index}")
    status = cli_main(["index", "build", "--model", "pretrained", "--index", str(index), "--video", str(video),
                       "--every", str(every)])
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, query_frame)
    ok, frame = capture.read()
    capture.release()
    if status or not ok:
        print(f"   indexing failed or frame {query_frame} unreadable")
        return 1
    cv2.imwrite(str(query), frame)
    print(f"   query: the most confident person in frame {query_frame} ({query})")
    status = cli_main(["query", "--index", str(index), "--image", str(query), "--top-k", "8", "--report", str(report)])
    print(f"   browse it: personsearch serve --index {index}")
    return status


def run(args: argparse.Namespace) -> int:
    from ..synthetic.preview import write_preview

    folder = args.out / f"synth-{args.preset}-{args.seed}"
    failed = _synthesize(args, folder)
    if failed:
        return 1
    _train_reid(args, folder)
    print(f"== contact sheet of the benchmark: {write_preview(folder)}")
    return _search_video(args.out)
