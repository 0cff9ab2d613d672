"""Robustness: training runs under a full disk and a resume that asks for fewer epochs."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from engine_toy import ToyRecipe

from personsearch.cli import main
from personsearch.engine import EngineConfig, train
from personsearch.engine.checkpoint import atomic_torch_save, list_checkpoints, save_checkpoint
from personsearch.utils.files import atomic_write_text

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_torch_thread")]


def _cfg(**kw) -> EngineConfig:
    return EngineConfig(**{**dict(epochs=2, lr=1e-2, schedule="constant", progress=False, tensorboard=False), **kw})


def test_resuming_with_fewer_epochs_is_refused_not_silently_kept(tmp_path):
    train(ToyRecipe(), _cfg(epochs=3, keep_checkpoints=0), tmp_path)
    with pytest.raises(ValueError, match=r"after 3 epochs, more than engine.epochs = 1"):
        train(ToyRecipe(), _cfg(epochs=1), tmp_path, resume=True)
    resumed = train(ToyRecipe(), _cfg(epochs=3), tmp_path, resume=True)  # the same length still resumes
    assert len(resumed.history) == 3


def test_the_train_cli_refuses_before_rewriting_config_yaml(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 5}, out / "checkpoints" / "epoch_0005.pt")
    (out / "config.yaml").write_text("engine:\n  epochs: 5\n")
    code = main(["-q", "train", "baseline", "--out", str(out), "--resume", "--set", "engine.epochs=2"])
    err = capsys.readouterr().err
    assert code == 2 and "after 5 epochs, more than engine.epochs = 2" in err
    assert (out / "config.yaml").read_text() == "engine:\n  epochs: 5\n"


def test_disk_full_during_a_checkpoint_save_names_the_file_and_keeps_the_previous(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, {"model": {}, "epoch": 1})
    real_save = torch.save

    def full(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match=r"epoch_0002\.pt: cannot save the checkpoint .*file write failed"):
        save_checkpoint(tmp_path, 2, {"model": {}, "epoch": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch_0001.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0001.pt", "last.json"]  # no temporary left
    with pytest.raises(OSError) as info:
        monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
        atomic_torch_save({}, tmp_path / "model_final.pt")
    assert info.value.errno == errno.ENOSPC and "model_final.pt" in str(info.value)


def test_disk_full_in_an_atomic_text_write_names_the_file(tmp_path, monkeypatch):
    import os

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match=r"last\.json: cannot write the file \(No space left on device\)"):
        atomic_write_text(tmp_path / "last.json", "{}")
    assert not list(Path(tmp_path).iterdir())
