"""The synthetic benchmark end to end: all five outputs, read back by the real-format readers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from personsearch.cli import main
from personsearch.data.coco import read_coco_persons
from personsearch.data.cuhk_sysu import read_cuhk_sysu
from personsearch.data.folder import list_images
from personsearch.data.market1501 import read_market1501
from personsearch.data.prw import read_prw
from personsearch.data.records import UNLABELED
from personsearch.synthetic.config import make_config
from personsearch.synthetic.generate import generate


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_market_output_follows_the_market_protocol(tiny_synth, tiny_config):
    data = read_market1501(tiny_synth / "market1501")
    sizes = tiny_config.market
    assert data.num_train_pids == sizes.train_ids
    assert sorted({s.pid for s in data.train}) == list(range(sizes.train_ids))  # relabelled
    query_pids = {s.pid for s in data.query}
    assert len(query_pids) == sizes.test_ids
    assert not query_pids & {0, -1}
    gallery_pids = [s.pid for s in data.gallery]
    assert gallery_pids.count(0) == sizes.distractors  # distractors kept
    assert -1 not in gallery_pids  # junk dropped by the reader ...
    junk = list((tiny_synth / "market1501" / "bounding_box_test").glob("-1_*.jpg"))
    assert len(junk) == sizes.junk  # ... though written, as in the real dataset
    # every query has a same-identity gallery image from another camera (a valid Market query)
    seen = {(s.pid, s.camid) for s in data.gallery}
    for q in data.query:
        assert any(pid == q.pid and cam != q.camid for pid, cam in seen), q.path.name
    assert {s.camid for s in data.train + data.gallery} <= set(range(sizes.cameras))


def test_scene_outputs_load_with_consistent_identities(tiny_synth, tiny_config):
    sysu = read_cuhk_sysu(tiny_synth / "cuhk_sysu")
    assert len(sysu.train) + len(sysu.gallery) == tiny_config.cuhk_sysu.scenes
    assert sorted(sysu.gallery_lists) == list(tiny_config.gallery_sizes)
    for size, lists in sysu.gallery_lists.items():
        assert len(lists) == len(sysu.queries) > 0
        assert all(len(g) == size for g in lists)
        for q, gallery in zip(sysu.queries, lists):
            names = [name for name, _ in gallery]
            assert q.image.name not in names
            assert any(box is not None for _, box in gallery)  # at least one positive scene
    assert 0 < sysu.num_train_pids <= tiny_config.cuhk_sysu.train_ids
    prw = read_prw(tiny_synth / "prw")
    assert len(prw.train) + len(prw.gallery) == tiny_config.prw.scenes
    assert prw.queries and {q.camid for q in prw.queries} <= set(range(tiny_config.prw.cameras))
    train_pids = np.concatenate([s.pids for s in prw.train])
    labeled = np.unique(train_pids[train_pids != UNLABELED])
    assert labeled.tolist() == list(range(prw.num_train_pids))
    for scene in sysu.train + prw.train + prw.gallery:
        assert scene.boxes.shape[1] == 4 and (scene.boxes[:, 2:] > scene.boxes[:, :2]).all()


def test_detection_and_unlabeled_outputs(tiny_synth, tiny_config):
    det = read_coco_persons(tiny_synth / "detection" / "annotations" / "instances_person.json",
                            tiny_synth / "detection" / "images")
    assert len(det.images) == tiny_config.detection.images
    assert sum(len(s.boxes) for s in det.images) > tiny_config.detection.images  # crowded scenes
    assert all((s.pids == UNLABELED).all() for s in det.images)
    assert len(list_images(tiny_synth / "unlabeled")) == tiny_config.unlabeled.images


def test_same_seed_gives_byte_identical_files_whatever_the_worker_count(tiny_synth, tmp_path, tiny_config):
    again = tmp_path / "again"
    generate(again, tiny_config, workers=1, progress=False)
    assert _tree_digest(again) == _tree_digest(tiny_synth)


def test_another_seed_gives_other_images(tmp_path):
    a = generate(tmp_path / "a", make_config("tiny", {"market": {"train_ids": 3, "test_ids": 3}}, seed=1),
                 workers=1, outputs=["market1501"], progress=False)
    b = generate(tmp_path / "b", make_config("tiny", {"market": {"train_ids": 3, "test_ids": 3}}, seed=2),
                 workers=1, outputs=["market1501"], progress=False)
    assert a["crops"] > 0 and b["crops"] > 0
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "b")


def test_cli_synth_with_overrides_and_preview(tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["synth", str(out), "--preset", "tiny", "--set", "market.train_ids=4", "--set", "market.test_ids=3",
                 "--only", "market1501", "--only", "unlabeled", "--workers", "1", "--preview"])
    assert code == 0
    assert read_market1501(out / "market1501").num_train_pids == 4
    assert not (out / "cuhk_sysu").exists()
    from PIL import Image

    sheet = Image.open(out / "preview.png")
    assert sheet.width > 200 and sheet.height > 200
    assert "preview.png" in capsys.readouterr().out


def test_cli_rejects_unknown_settings_and_foreign_folders(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--set", "market.train_idz=4"]) == 2
    assert "market.train_idz" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    assert main(["synth", str(foreign), "--only", "unlabeled"]) == 2
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_datasets_check_passes_generated_data_and_names_a_corrupt_image(tiny_synth, tmp_path, capsys):
    assert main(["datasets", "check", "--format", "cuhk-sysu", str(tiny_synth / "cuhk_sysu")]) == 0
    assert "OK" in capsys.readouterr().out
    copy = tmp_path / "market"
    import shutil

    shutil.copytree(tiny_synth / "market1501", copy)
    victim = sorted((copy / "query").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:200])
    assert main(["datasets", "check", "--format", "market1501", str(copy)]) == 1
    assert victim.name in capsys.readouterr().out


@pytest.mark.parametrize("bad", [{"difficulty": {"lighting": 2.0}}, {"market": {"images_per_camera": [3]}}])
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValueError):
        make_config("tiny", bad)


def test_hard_preset_keeps_standard_scenes_and_makes_people_less_distinct():
    from personsearch.synthetic.identity import sample_identity

    standard, hard = make_config("standard"), make_config("hard")
    assert hard.cuhk_sysu == standard.cuhk_sysu and hard.prw == standard.prw  # same person search data sizes
    assert hard.market.train_ids > standard.market.train_ids and hard.unlabeled.images > standard.unlabeled.images

    def outfits(cfg):
        rng = np.random.default_rng(0)
        people = [sample_identity(rng, cfg.difficulty) for _ in range(300)]
        return len({(p.upper_name, p.lower_name, p.lower_type) for p in people})

    assert outfits(hard) < 0.6 * outfits(standard)  # many more identities share a whole outfit
