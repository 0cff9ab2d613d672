"""benchmarks/scene_throughput.py end to end on tiny synthetic scenes: pipelines side by side."""

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


def test_scene_throughput_times_runs_and_their_variants(tiny_synth, tmp_path, capsys):
    from personsearch.methods.smoke import smoke_recipe

    run = tmp_path / "nae"
    smoke_recipe("nae", tiny_synth, run, device="cpu")
    bench = _load()
    threads = torch.get_num_threads()
    returned = bench.main(["--data", str(tiny_synth / "cuhk_sysu"), "--scenes", "2", "--warmup", "0", "--pause", "0",
                           "--threads", "1", "--pipeline", "pretrained=pretrained", "--pipeline", f"nae={run}",
                           "--pipeline", f"nae_bf16={run}@bf16", "--pipeline", f"nae_nchw={run}@nchw", "--pipeline", f"nae_unfolded={run}@unfolded",
                           "--pipeline", f"nae_p10={run}@proposals=10"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == returned and printed["image_wh"] == ["320x240"]
    rows = printed["pipelines"]
    assert list(rows) == ["pretrained", "nae", "nae_bf16", "nae_nchw", "nae_unfolded", "nae_p10"]
    for name, row in rows.items():
        assert row["scenes"] == 2 and math.isfinite(row["ms_median"]) and row["ms_median"] > 0, name
    assert rows["pretrained"]["speedup"] == 1.0
    agree = printed["fidelity"]
    assert set(agree) == {"nae_bf16", "nae_nchw", "nae_unfolded", "nae_p10"}
    assert agree["nae_unfolded"]["query_cos_min"] > 0.9999  # folding BatchNorm changes nothing
    assert agree["nae_nchw"]["query_cos_min"] > 0.9999  # nor does the memory layout
    assert agree["nae_bf16"]["query_cos_min"] > 0.95
    assert torch.get_num_threads() == threads  # main() restores the caller's thread count
