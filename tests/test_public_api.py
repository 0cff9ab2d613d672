"""The public API as the README documents it: every import line and dotted name in it resolves, and
every documented call form runs as written (on the tiny synthetic benchmark)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _resolve(dotted: str):
    """Import the longest module prefix of ``dotted`` and walk the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_import_line_of_the_readme_resolves():
    lines = re.findall(r"^\s+from (personsearch[\w.]*) import ([\w, ]+)$", README, flags=re.M)
    assert len(lines) >= 8
    for module, names in lines:
        imported = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(imported, name), f"from {module} import {name}"
            assert not isinstance(getattr(imported, name), type(importlib)), f"{module}.{name} is a module"


def test_every_dotted_name_of_the_readme_resolves():
    names = set(re.findall(r"`(personsearch(?:\.\w+)+)(?:\([^`]*\))?`", README))
    assert {"personsearch.data.read_market1501", "personsearch.distance.local_distance"} <= names
    for dotted in sorted(names):
        _resolve(dotted)


def test_readers_named_in_the_dataset_table_are_the_data_package_functions():
    for reader in re.findall(r"\| `(read_\w+|list_images)` \|", README):
        assert callable(_resolve(f"personsearch.data.{reader}")), reader


def test_evaluation_forms_run_as_written():
    from personsearch.evaluation import distance_matrix, evaluate_reid, re_ranking, re_ranking_features

    rng = np.random.default_rng(0)
    query_feats, gallery_feats = rng.normal(size=(6, 8)), rng.normal(size=(20, 8))
    q_pids, g_pids = np.arange(6) % 3, np.arange(20) % 3
    q_camids, g_camids = np.zeros(6, int), np.ones(20, int)
    distmat = distance_matrix(query_feats, gallery_feats, "cosine")
    result = evaluate_reid(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    assert result.cmc.shape == (20,) and 0 < result.mAP <= 1 and 0 < result.mINP <= 1
    assert re_ranking(distmat, distance_matrix(query_feats, query_feats), distance_matrix(gallery_feats, gallery_feats)).shape == (6, 20)
    assert re_ranking_features(query_feats, gallery_feats, metric="cosine").shape == (6, 20)
    import personsearch.distance
    import personsearch.evaluation

    x, y = torch.randn(3, 8, 16), torch.randn(4, 8, 16)
    assert personsearch.distance.local_distance(x, y).shape == (3, 4)
    torch.testing.assert_close(personsearch.evaluation.local_distance(x, y), personsearch.distance.local_distance(x, y))


def test_person_search_protocol_forms_run_as_written(tiny_synth):
    from personsearch.data import cuhk_sysu_galleries, prw_galleries, read_cuhk_sysu, read_prw
    from personsearch.evaluation import evaluate_detection, evaluate_search

    root = tiny_synth / "cuhk_sysu"
    dataset = read_cuhk_sysu(root)
    size = min(dataset.gallery_lists)
    queries, galleries = cuhk_sysu_galleries(read_cuhk_sysu(root), gallery_size=size)
    detections = {s.name: np.c_[s.boxes, np.ones(len(s.boxes))].astype(np.float32) for s in dataset.gallery}
    det_feats = {s.name: np.eye(len(s.boxes), 4, dtype=np.float32) for s in dataset.gallery}
    query_feats = np.eye(len(queries), 4, dtype=np.float32)
    scores = evaluate_search(query_feats, galleries, detections, det_feats, det_thresh=0.5)
    assert {"mAP", "top1", "top5", "top10"} <= set(scores)
    gt = {s.name: np.asarray(s.boxes, np.float32) for s in dataset.gallery}
    assert evaluate_detection(gt, detections)["AP"] == pytest.approx(1.0)
    prw_queries, prw_lists = prw_galleries(read_prw(tiny_synth / "prw"))
    assert len(prw_queries) == len(prw_lists) > 0


def test_pipeline_forms_run_as_written(tiny_synth):
    from personsearch.detection import SsdlitePersonDetector
    from personsearch.models import build_reid_model
    from personsearch.pipelines import TwoStepSearcher, load_searcher, search
    from personsearch.data import read_cuhk_sysu

    dataset = read_cuhk_sysu(tiny_synth / "cuhk_sysu")
    query = dataset.queries[0]
    rgb_frame = np.zeros((240, 320, 3), np.uint8)
    boxes = SsdlitePersonDetector(tile=True).detect(rgb_frame)
    assert boxes.ndim == 2 and boxes.shape[1] == 5
    searcher = TwoStepSearcher(SsdlitePersonDetector().detect,
                               build_reid_model("mobilenetv2", 0, weights="imagenet", neck="none"))
    assert set(searcher(rgb_frame)) >= {"boxes", "scores", "embeddings"}
    searcher = load_searcher("pretrained")
    gallery = [s.path for s in dataset.gallery[:4]]
    hits = search(searcher, query.image, list(query.box), gallery, top_k=10)
    assert len(hits) <= 10
    for hit in hits:
        assert hit.image in map(str, gallery) and len(hit.box) == 4
        assert -1 <= hit.similarity <= 1 and 0 <= hit.det_score <= 1
