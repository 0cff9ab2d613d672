"""benchmarks/scene_throughput.py end to end on 2 tiny synthetic scenes with tiny e2e input sizes."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scene_throughput.py"


def _load():
    spec = importlib.util.spec_from_file_location("scene_throughput_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scene_throughput_reports_every_pipeline(capsys):
    bench = _load()
    threads = torch.get_num_threads()
    # one torch thread: on a shared 2-core box a second OpenMP thread makes small forwards 10x slower
    returned = bench.main(["--scenes", "2", "--frames", "0", "--warmup", "0", "--pause", "0", "--threads", "1",
                           "--min-size", "96", "--max-size", "128", "--roi-output-size", "4",
                           "--detections-per-img", "10"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == returned
    assert list(printed["sets"]) == ["synthetic"]  # --frames 0: no video set
    synthetic = printed["sets"]["synthetic"]
    assert synthetic["image_wh"] == [[320, 240]]
    assert synthetic["e2e_net_input_hw"] == [96, 128]
    rows = synthetic["pipelines"]
    assert list(rows) == list(bench.PIPELINES)
    for name, row in rows.items():
        assert row["scenes_s"] > 0 and math.isfinite(row["scenes_s"]), name
        assert row["timed_scenes"] == 2, name
        assert math.isclose(row["ms_median"], 1000 / row["scenes_s"], rel_tol=0.01), name
    assert rows[bench.BASELINE]["speedup"] == 1.0
    for name in ("e2e_mobilenetv2_fp32", "e2e_mobilenetv2_bf16", "e2e_resnet18_fp32"):
        assert 0 < rows[name]["dets_raw_mean"] <= 10 and rows[name]["dets_kept_mean"] <= rows[name]["dets_raw_mean"]
    check = printed["bf16_check"]
    assert check["autocast_ran"] and check["layer_output_dtypes"]["Conv2d:bfloat16"] > 0
    assert 0 < check["query_emb_max_abs_diff"] < 0.2 and check["query_emb_cos_min"] > 0.9
    assert printed["torch_threads"] == 1 and printed["min_size"] == 96
    assert torch.get_num_threads() == threads  # main() restores the caller's thread count
