"""DKD ablation at equal budget: the student alone, each distillation term, full DKD; one JSON line.

Every row trains the same student recipe (``seqnet``'s settings, same seed, same epochs) with a
different set of ``dkd`` terms switched on; the teacher is a ``two_step`` run trained first (with
ISA) on the same scenes, beside a detector run (the teacher's detector is never used by DKD).

    # the README's table (standard preset, CUHK-SYSU; ~3 h on 2 cores):
    .venv/bin/python benchmarks/dkd_ablation.py --data outputs/demo/synth-standard-0/cuhk_sysu --out runs/dkd_ablation
    # a quick look on a generated tiny set (~15 min): --tiny OUT
    .venv/bin/python benchmarks/dkd_ablation.py --tiny /tmp/dkd-tiny --rows student,full

Rows: ``student`` (the seqnet recipe, no teacher), ``prob`` (+ probability KD; ``prob_raw``: with the
teacher classifier's raw logits instead of OIM-scaled cosines), ``relation`` (+ pair
and triplet relation KD), ``fsa`` (+ jittered student boxes only), ``full`` (all terms + FSA).
Runs that already hold ``metrics_final.json`` are reused, so an interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from personsearch.methods.runs import train_or_reuse as train_run  # noqa: E402

NO_KD = ["loss.kd_prob=0", "loss.kd_pair=0", "loss.kd_triplet=0"]
NO_FSA = ["data.identity_batch.isa.enlarge=1.1", "data.identity_batch.isa.min_side=0.85"]  # seqnet's own jitter
ROWS: dict[str, tuple[str, list[str]]] = {
    "student": ("seqnet", []),
    "prob": ("dkd", ["loss.kd_pair=0", "loss.kd_triplet=0", *NO_FSA]),
    "prob_raw": ("dkd", ["loss.kd_pair=0", "loss.kd_triplet=0", "distill.teacher_logits=raw", *NO_FSA]),
    "relation": ("dkd", ["loss.kd_prob=0", *NO_FSA]),
    "fsa": ("dkd", [*NO_KD]),
    "full": ("dkd", []),
}
TINY = ["data.min_size=240", "data.max_size=320", "data.workers=0", "eval.gallery_sizes=[10]"]


def tiny_scenes(out: Path) -> Path:
    """The learning test's tiny CUHK-SYSU set (60 training identities, 40 queries), generated once."""
    from personsearch.synthetic.config import make_config
    from personsearch.synthetic.generate import generate

    root = out / "synth"
    if not (root / "synth.yaml").is_file():
        tiny = make_config("tiny")
        config = replace(tiny, cuhk_sysu=replace(tiny.cuhk_sysu, train_ids=60, test_ids=40, scenes=300))
        generate(root, config, workers=2, outputs=("cuhk_sysu",), progress=False)
    return root / "cuhk_sysu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", type=Path, help="CUHK-SYSU-format scenes (standard preset)")
    where.add_argument("--tiny", type=Path, help="generate the learning test's tiny set here and run on it")
    parser.add_argument("--out", type=Path, default=None, help="run folders (default: --tiny's folder, else runs/dkd_ablation)")
    parser.add_argument("--format", default="cuhk-sysu", help="cuhk-sysu or prw")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from {', '.join(ROWS)}")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    out = args.out or (args.tiny if args.tiny else Path("runs/dkd_ablation"))
    root = tiny_scenes(args.tiny) if args.tiny else args.data
    common = [f"data.root={root}", f"data.format={args.format}", f"engine.epochs={args.epochs}",
              "engine.progress=false", *(TINY if args.tiny else [])]
    sizes = [o for o in common if o.startswith(("data.min_size", "data.max_size", "data.workers"))]
    detector = out / "detector"  # only for two_step's evaluation: one step is enough
    train_run("detector", [*common[:2], *sizes, "engine.epochs=1", "engine.max_iters_per_epoch=1"], detector)
    teacher = out / "teacher_isa"
    teacher_metrics = train_run("two_step", [*common, f"detector_run={detector}", "data.isa.enlarge=1.2",
                                             "engine.epochs=30"], teacher)
    rows = {"teacher": {**teacher_metrics, "note": "search metrics through a one-step detector, meaningless: "
                                                   "DKD uses only the teacher's crop features"}}
    for name in args.rows.split(","):
        if name not in ROWS:
            parser.error(f"unknown row {name!r} (known: {', '.join(ROWS)})")
        recipe, extra = ROWS[name]
        teach = [f"teacher={teacher}"] if recipe == "dkd" else []
        rows[name] = train_run(recipe, [*common, "eval.cbgm=false", *teach, *extra], out / name)
    print(json.dumps({"data": str(root), "epochs": args.epochs, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
