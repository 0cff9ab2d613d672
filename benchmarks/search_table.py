"""The person search results table from finished run folders: one JSON line, plus markdown rows with -v.

Reads each run's ``metrics_final.json`` (written by ``personsearch train``) and ``metrics.jsonl``
(training time: the last logged ``time``, evaluation excluded) and reports, per run, detection AP
and recall and, for CUHK-SYSU runs, mAP / top-1 at each gallery size (``mAP@100``...), for PRW runs
``mAP`` / ``top1``; ``ref`` (a run name) adds each run's mAP as a share of that run's at ``gallery``.

    .venv/bin/python benchmarks/search_table.py runs/two_step runs/nae runs/seqnet --ref two_step -v
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def train_minutes(run: Path) -> float | None:
    """Minutes from the start of training to its last logged step (evaluation excluded)."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return None
    times = [json.loads(line).get("time") for line in log.read_text().splitlines() if line.strip()]
    times = [t for t in times if isinstance(t, (int, float))]
    return round(max(times) / 60, 1) if times else None


def run_row(run: Path, gallery: int) -> dict:
    """The figures of one finished run (percentages, one decimal)."""
    path = run / "metrics_final.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no metrics_final.json (is training finished?)")
    metrics = json.loads(path.read_text())
    pct = {k: round(100 * float(v), 1) for k, v in metrics.items() if isinstance(v, (int, float))}
    key = f"@{gallery}" if f"mAP@{gallery}" in pct else ""
    return {"run": run.name, "det_AP": pct.get("det_AP"), "det_recall": pct.get("det_recall"),
            "mAP": pct.get(f"mAP{key}"), "top1": pct.get(f"top1{key}"), "gallery": gallery if key else "prw",
            "train_min": train_minutes(run), "all": pct}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--gallery", type=int, default=100, help="CUHK-SYSU gallery size of the main columns")
    parser.add_argument("--ref", default=None, help="run name whose mAP is 100%% in the share column")
    parser.add_argument("-v", "--markdown", action="store_true", help="also print markdown table rows")
    args = parser.parse_args(argv)
    rows = [run_row(run, args.gallery) for run in args.runs]
    ref = next((r for r in rows if r["run"] == args.ref), None) if args.ref else None
    if args.ref and ref is None:
        parser.error(f"--ref {args.ref}: not among the runs ({', '.join(r['run'] for r in rows)})")
    for row in rows:
        if ref and row["mAP"] is not None and ref["mAP"]:
            row["share_of_ref"] = round(100 * row["mAP"] / ref["mAP"], 1)
    print(json.dumps({"gallery": args.gallery, "runs": rows}))
    if args.markdown:
        print("| run | det AP | recall | mAP | top-1 | % of ref | train min |", file=sys.stderr)
        print("|---|---|---|---|---|---|---|", file=sys.stderr)
        for r in rows:
            print(f"| {r['run']} | {r['det_AP']} | {r['det_recall']} | {r['mAP']} | {r['top1']} | "
                  f"{r.get('share_of_ref', '-')} | {r['train_min']} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
