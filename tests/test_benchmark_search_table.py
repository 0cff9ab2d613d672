"""benchmarks/search_table.py turns finished run folders into the README's results rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "search_table.py"


def _run(tmp_path: Path, name: str, metrics: dict, times: list[float]) -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "metrics_final.json").write_text(json.dumps(metrics))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "time": t}) + "\n" for i, t in enumerate(times)))
    return run


def test_rows_share_of_the_reference_and_training_minutes(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("search_table", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ref = _run(tmp_path, "two_step", {"det_AP": 0.986, "det_recall": 0.987, "mAP@100": 0.841, "top1@100": 0.86}, [60, 300])
    e2e = _run(tmp_path, "seqnet", {"det_AP": 0.992, "det_recall": 0.993, "mAP@100": 0.791, "top1@100": 0.82,
                                    "mAP@50": 0.84}, [120, 1422])
    prw = _run(tmp_path, "seqnet_prw", {"det_AP": 0.9, "det_recall": 0.95, "mAP": 0.5, "top1": 0.8}, [30])
    assert bench.main([str(ref), str(e2e), str(prw), "--ref", "two_step", "-v"]) == 0
    out, err = capsys.readouterr()
    rows = {r["run"]: r for r in json.loads(out)["runs"]}
    assert rows["seqnet"]["mAP"] == 79.1 and rows["seqnet"]["top1"] == 82.0 and rows["seqnet"]["train_min"] == 23.7
    assert rows["seqnet"]["share_of_ref"] == pytest.approx(94.1) and rows["two_step"]["share_of_ref"] == 100.0
    assert rows["seqnet_prw"]["gallery"] == "prw" and rows["seqnet_prw"]["mAP"] == 50.0
    assert "| seqnet | 99.2 | 99.3 | 79.1 | 82.0 | 94.1 | 23.7 |" in err
    with pytest.raises(FileNotFoundError, match="metrics_final.json"):
        bench.main([str(tmp_path)])
