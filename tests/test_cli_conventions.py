"""CLI conventions: one way to name an index, --json / --report meaning the same in every verb,
logging with -v / -q, progress lines when stderr is a file, recipes shipped as package data."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from personsearch.cli import build_parser, main
from personsearch.methods import shipped_recipes

ROOT = Path(__file__).resolve().parents[1]


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(_subparsers(sub, f"{prefix}{name} "))
    return found


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: action for action in parser._actions for opt in action.option_strings}


def test_an_index_is_always_named_with_dash_dash_index():
    verbs = _subparsers(build_parser())
    for verb in ("index build", "index add", "index stats", "query", "serve"):
        opts = _options(verbs[verb])
        assert "--index" in opts and opts["--index"].required, verb
        positional = [a.dest for a in verbs[verb]._actions if not a.option_strings and a.dest != "help"]
        assert "index" not in positional, verb


def test_json_is_a_flag_and_report_a_path_in_every_verb():
    verbs = _subparsers(build_parser())
    with_json = [v for v, p in verbs.items() if "--json" in _options(p)]
    assert {"eval", "train", "query", "index build", "index add", "index stats", "extract", "recipes"} <= set(with_json)
    for verb in with_json:
        assert isinstance(_options(verbs[verb])["--json"], argparse._StoreTrueAction), verb
    for verb in ("eval", "query"):
        action = _options(verbs[verb])["--report"]
        assert action.type is Path and action.metavar == "OUT.html", verb


def test_recipes_lists_every_shipped_recipe(capsys):
    assert main(["recipes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["recipes"]
    assert {r["name"] for r in rows} == set(shipped_recipes()) >= {"baseline", "alignedreid", "nae"}
    assert all(Path(r["file"]).is_file() and "personsearch/methods" in r["file"] for r in rows)
    assert main(["recipes"]) == 0 and "nae" in capsys.readouterr().out


def test_quiet_and_verbose_set_the_log_level():
    logger = logging.getLogger("personsearch")
    level = logger.level
    try:
        main(["-q", "recipes", "--json"])
        assert logger.level == logging.WARNING
        main(["-v", "recipes", "--json"])
        assert logger.level == logging.DEBUG
        main(["recipes", "--json"])
        handlers = [h for h in logger.handlers if h.get_name() == "personsearch-cli"]
        assert logger.level == logging.INFO and len(handlers) == 1  # replaced, not stacked
    finally:
        logger.setLevel(level)


def test_cli_messages_follow_stderr_when_it_is_swapped_and_closed(monkeypatch):
    """A caller that captured stderr during one command and closed that stream does not break the
    messages of the next: they go to whatever stderr is now."""
    import io
    import logging

    logger = logging.getLogger("personsearch")
    level = logger.level
    try:
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        main(["recipes", "--json"])
        first.close()
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        logger.info("after the swap")
        text = second.getvalue()
        assert text.rstrip().endswith("personsearch: after the swap") and "Logging error" not in text, text
    finally:
        logger.setLevel(level)


def test_training_with_stderr_in_a_file_logs_progress_lines(tiny_synth, tmp_path):
    log = tmp_path / "train.log"
    env = {**os.environ, "PERSONSEARCH_PROGRESS_INTERVAL": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "personsearch.cli", "train", "baseline", "--out", str(tmp_path / "run"),
           "--set", f"data.root={tiny_synth / 'market1501'}", "--set", "data.workers=0", "--set", "data.p=4",
           "--set", "data.k=2", "--set", "data.height=64", "--set", "data.width=32", "--set", "engine.epochs=1",
           "--set", "engine.max_iters_per_epoch=3", "--set", "eval.rerank=false", "--set", "engine.tensorboard=false"]
    with log.open("w") as err:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, timeout=300)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "personsearch.progress: epoch 1/1: 1/3 it" in text and "3/3 it" in text
    assert "mAP" in done.stdout  # the result table goes to stdout, messages to stderr


def test_extract_works_on_a_person_search_run(tiny_synth, tmp_path, capsys):
    from personsearch.methods.smoke import smoke_recipe

    smoke_recipe("nae", tiny_synth, tmp_path / "run", device="cpu")
    out = tmp_path / "feats.npz"
    capsys.readouterr()
    with pytest.warns(UserWarning, match="runs in PyTorch"):  # its RoI query path exports with a fixed batch
        assert main(["extract", str(tmp_path / "run"), "--images", str(tiny_synth / "market1501" / "query"),
                     "--out", str(out), "--json", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "torch"
    feats = np.load(out)["features"]
    assert summary["dim"] == 256 and feats.shape == (summary["images"], 256)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)  # the query path's unit embeddings
    assert main(["extract", str(tmp_path / "run"), "--images", str(tiny_synth / "market1501" / "query"),
                 "--out", str(tmp_path / "bf16.npz"), "--backend", "onnx", "--precision", "bf16"]) == 2
    assert "--backend onnx runs fp32 on CPU only" in capsys.readouterr().err
    assert not (tmp_path / "bf16.npz").exists()


@pytest.mark.slow
def test_the_wheel_ships_every_recipe(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("personsearch-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name, path in shipped_recipes().items():
        inside = "personsearch/" + path.relative_to(ROOT / "src" / "personsearch").as_posix()
        assert inside in names, name
