"""The recipe contract, checked on every registered method and every shipped recipe.

Each shipped recipe is built on the tiny synthetic benchmark, trains one step, evaluates, is saved
and loaded back as a run (weights identical), and its inference forms run (crops, and whole scenes
for end-to-end models). The same function serves `tools/gpu_smoke.sh` on a CUDA machine.
"""

from __future__ import annotations

import json

import pytest
import yaml

from personsearch.engine import Recipe
from personsearch.methods import METHODS, recipe_class, recipe_file, shipped_recipes
from personsearch.methods.smoke import main as smoke_main
from personsearch.methods.smoke import smoke_recipe

pytestmark = pytest.mark.usefixtures("two_torch_threads")


def test_every_method_is_a_recipe_with_a_config_and_a_shipped_recipe():
    methods_with_recipes = {yaml.safe_load(path.read_text())["method"] for path in shipped_recipes().values()}
    for method in METHODS:
        cls = recipe_class(method)
        assert issubclass(cls, Recipe), method
        assert cls.CONFIG().method == method  # the config's default method names its own class
        assert method in methods_with_recipes, f"{method} ships no YAML recipe"


@pytest.mark.parametrize("name", list(shipped_recipes()))
def test_shipped_recipe_trains_evaluates_reloads_and_infers(name, tiny_synth, tmp_path):
    out = smoke_recipe(name, tiny_synth, tmp_path / name, device="cpu", amp="none")
    assert out["ok"] and out["metrics"]
    metrics = set(out["metrics"])
    if out["method"] == "detector":  # finds people, embeds nobody
        assert "dim" not in out and "detected_people" in out and metrics == {"det_AP", "det_recall"}
    elif out["method"] == "two_step":
        assert out["dim"] > 0 and "detected_people" in out and {"det_AP", "mAP@10", "top1@10"} <= metrics
    elif out["method"] in ("nae", "seqnet", "dkd"):
        assert out["dim"] > 0 and "scene_people" in out and {"det_AP", "mAP@10", "mAP_cbgm@10"} <= metrics
    elif out["method"] == "hybrid_pretrain":  # a whole person search model, monitored on sub-task data
        assert out["dim"] > 0 and "scene_people" in out and {"det_AP", "reid_mAP", "reid_rank1"} <= metrics
    else:
        assert out["dim"] > 0 and {"mAP", "rank1"} <= metrics


def test_smoke_command_runs_bf16_and_reports_failures_per_recipe(tiny_synth, tmp_path, capsys):
    assert smoke_main(["--synth", str(tiny_synth), "--recipes", "baseline", "--device", "cpu", "--amp", "bf16",
                       "--out", str(tmp_path)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["ok"] and line["amp"] == "bf16" and line["device"] == "cpu"
    # fp16 on a CPU is refused by the engine: the command reports it and exits non-zero
    assert smoke_main(["--synth", str(tiny_synth), "--recipes", "baseline", "--device", "cpu", "--amp", "fp16",
                       "--out", str(tmp_path / "fp16")]) == 1
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not line["ok"] and "fp16" in line["error"]


def test_recipes_are_found_by_name_or_path(tmp_path):
    assert recipe_file("nae") == shipped_recipes()["nae"]
    own = tmp_path / "mine.yaml"
    own.write_text("method: baseline\n")
    assert recipe_file(own) == own
    with pytest.raises(FileNotFoundError, match="shipped: .*alignedreid"):
        recipe_file("no-such-recipe")
