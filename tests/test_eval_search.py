"""evaluate_search agrees with the SeqNet-style loop reference to 1e-6 on random problems (duplicated
entries, positives without detections, sub-threshold boxes, exact ties, tiny GT boxes, queries without
candidates), on hand-computed examples, on perfect features from the synthetic benchmark, and refuses
bad input with errors naming the query or image. Also the gallery builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personsearch.data.records import UNLABELED, SceneAnnotation, SearchDataset, SearchQuery
from personsearch.evaluation import search as search_mod
from personsearch.evaluation.search import evaluate_search
from personsearch.data.galleries import FrameGallery, cuhk_sysu_galleries, prw_galleries
from reference_search import reference_search

KEYS = ("top1", "top5", "top10")


# ----------------------------------------------------------------------------------------- random problems
def _random_problem(rng: np.random.Generator, integer_feats: bool):
    n_img, dim = int(rng.integers(4, 30)), int(rng.integers(1, 4) if integer_feats else rng.integers(2, 8))
    names = [f"im{i}.jpg" for i in range(n_img)]
    detections, det_feats = {}, {}
    for name in names:
        r = rng.random()
        if r < 0.1:
            continue  # missing from both: no detections
        n = 0 if r < 0.15 else int(rng.integers(1, 8))
        xy = rng.integers(0, 60, (n, 2)).astype(np.float64)
        wh = rng.integers(0, 30, (n, 2)).astype(np.float64)  # zero-area boxes too
        score = rng.choice([0.2, 0.5, 0.7, 0.95], n)  # 0.5 = exactly the threshold: kept
        if n and rng.random() < 0.3:  # duplicated boxes: IoU ties inside an image
            xy[-1], wh[-1] = xy[0], wh[0]
        detections[name] = np.c_[xy, xy + wh, score]
        det_feats[name] = (rng.integers(-2, 3, (n, dim)) / 2 if integer_feats
                           else rng.standard_normal((n, dim))).astype(np.float32)
    n_q = int(rng.integers(1, 20))
    query_feats = (rng.integers(-2, 3, (n_q, dim)) / 2 if integer_feats else rng.standard_normal((n_q, dim)))

    def gt_box(name):
        det = detections.get(name)
        if det is not None and len(det) and rng.random() < 0.75:
            box = det[int(rng.integers(len(det))), :4] + rng.integers(-3, 4, 4)
        else:
            box = np.r_[rng.integers(0, 60, 2), 0, 0].astype(np.float64)
            box[2:] = box[:2] + rng.integers(1, 30, 2)
        if rng.random() < 0.25:  # tiny: the IoU threshold drops below 0.5
            box[2:] = box[:2] + rng.integers(1, 7, 2)
        box[2] = max(box[2], box[0] + 1)
        box[3] = max(box[3], box[1] + 1)
        return box.astype(np.float32)

    galleries = []
    for q in range(n_q):
        if q % 7 == 3:  # no candidate at all: only images without detections
            galleries.append([("ghost.jpg", gt_box("ghost.jpg")), ("ghost2.jpg", None)])
            continue
        chosen = rng.choice(names + ["ghost.jpg"], int(rng.integers(1, 14)))  # with repeats
        entries = [(str(n), gt_box(n) if rng.random() < 0.4 else None) for n in chosen]
        if all(b is None for _, b in entries):
            entries[0] = (entries[0][0], gt_box(entries[0][0]))
        galleries.append(entries)
    return query_feats, galleries, detections, det_feats


def _check_against_reference(problem, tol=1e-9):
    query_feats, galleries, detections, det_feats = problem
    ref_map, ref_top, ref_aps = reference_search(query_feats, galleries, detections, det_feats)
    ours = evaluate_search(query_feats, galleries, detections, det_feats)
    assert ours["mAP"] == pytest.approx(ref_map, abs=tol)
    assert [ours[k] for k in KEYS] == pytest.approx(ref_top, abs=1e-12)
    return ours, ref_aps


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("integer_feats", [True, False])
def test_matches_reference_on_random_problems(seed, integer_feats):
    rng = np.random.default_rng(seed)
    for _ in range(4):
        _check_against_reference(_random_problem(rng, integer_feats))


@pytest.mark.filterwarnings("ignore:no gallery image name")
def test_per_query_agreement_and_exact_tie_path(monkeypatch):
    """Query by query (no compensating errors); the tie-at-rank-k path is really exercised."""
    calls = []
    real = search_mod._exact_topk
    monkeypatch.setattr(search_mod, "_exact_topk", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(100)
    for _ in range(15):
        qf, galleries, dets, feats = _random_problem(rng, integer_feats=True)
        _, _, ref_aps = reference_search(qf, galleries, dets, feats)
        for i in range(len(galleries)):
            one = evaluate_search(qf[i:i + 1], galleries[i:i + 1], dets, feats)
            ref_map, ref_top, _ = reference_search(qf[i:i + 1], galleries[i:i + 1], dets, feats)
            assert one["mAP"] == pytest.approx(ref_aps[i], abs=1e-12)
            assert [one[k] for k in KEYS] == ref_top
    assert len(calls) >= 5


@pytest.mark.parametrize("dense, chunk, broadcast", [(0.0, 7, 16), (2.0, 7, 0), (0.0, 10**9, 0), (2.0, 50, 16)])
def test_code_paths_agree(monkeypatch, dense, chunk, broadcast):
    """Dense vs per-image similarities, many small chunks, sort vs broadcast rank counting."""
    monkeypatch.setattr(search_mod, "DENSE_FRACTION", dense)
    monkeypatch.setattr(search_mod, "CHUNK_CANDIDATES", chunk)
    monkeypatch.setattr(search_mod, "BROADCAST_TPS", broadcast)
    rng = np.random.default_rng(7)
    for integer_feats in (True, False, True):
        _check_against_reference(_random_problem(rng, integer_feats))


def test_det_thresh_is_respected():
    rng = np.random.default_rng(3)
    qf, galleries, dets, feats = _random_problem(rng, integer_feats=False)
    for thresh in (0.0, 0.6, 0.96):
        ref_map, ref_top, _ = reference_search(qf, galleries, dets, feats, det_thresh=thresh)
        ours = evaluate_search(qf, galleries, dets, feats, det_thresh=thresh)
        assert ours["mAP"] == pytest.approx(ref_map, abs=1e-9)
        assert [ours[k] for k in KEYS] == pytest.approx(ref_top)


# ----------------------------------------------------------------------------------------- hand-computed
def _hand_inputs():
    gt = np.array([0, 0, 10, 20], np.float32)  # IoU threshold min(0.5, 200/600) = 1/3
    dets = {"A": np.array([[0, 0, 10, 20, 0.9], [50, 50, 60, 70, 0.9]]),
            "B": np.array([[0, 0, 10, 10, 0.9], [0, 0, 5, 5, 0.3]])}  # second box of B below 0.5
    feats = {"A": np.array([[0.9, 0], [0.5, 0]]), "B": np.array([[0.7, 0], [0.1, 0]])}
    return gt, dets, feats


def test_hand_computed_example():
    gt, dets, feats = _hand_inputs()
    q = np.array([[1.0, 0], [-1, 0], [1, 0]])
    galleries = [
        # TP (sim .9) ranks first: AP 1 * recall 1/3 (C has no detections, A is listed twice: both count)
        [("A", gt), ("B", None), ("C", gt), ("A", gt)],
        # sims -.5, -.7, -.9(TP): precision 1/3, top-1 and top-5... the TP is third: top1 0, top5 1
        [("A", gt), ("B", None)],
        [("C", gt)],  # no candidate: AP 0, top-k 0
    ]
    out = evaluate_search(q, galleries, dets, feats)
    assert out["mAP"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)
    assert (out["top1"], out["top5"], out["top10"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_duplicate_entry_uses_first_box():
    gt, dets, feats = _hand_inputs()
    far = np.array([80, 80, 90, 100], np.float32)
    q = np.array([[1.0, 0]])
    # first entry of A has no box: A is scored as a negative, yet the second entry's box counts into count_gt
    assert evaluate_search(q, [[("A", None), ("A", gt)]], dets, feats)["mAP"] == 0.0
    # first entry's box is far from every detection: no TP although the second entry would match
    assert evaluate_search(q, [[("A", far), ("A", gt)]], dets, feats)["top10"] == 0.0
    # first entry matches: AP 1 * 1/2 (both entries count)
    assert evaluate_search(q, [[("A", gt), ("A", far)]], dets, feats)["mAP"] == pytest.approx(0.5)


def test_only_the_best_matching_box_is_the_true_positive():
    gt = np.array([0, 0, 100, 200], np.float32)
    dets = {"A": np.array([[0, 0, 100, 200, 1], [2, 2, 100, 200, 1], [300, 0, 400, 200, 1]])}
    feats = {"A": np.array([[0.5], [0.8], [0.9]])}
    # both overlapping boxes clear IoU 0.5; the higher-similarity one (.8) is the TP, .5 a negative;
    # the non-overlapping box (.9) outranks it: AP = 1/2, top1 0
    out = evaluate_search(np.array([[1.0]]), [[("A", gt)]], dets, feats)
    assert out["mAP"] == pytest.approx(0.5) and out["top1"] == 0.0 and out["top5"] == 1.0


def test_tiny_box_threshold():
    gt = np.array([0, 0, 4, 6], np.float32)  # threshold min(0.5, 24/224) = 0.107
    dets = {"A": np.array([[0, 0, 8, 12, 1.0]])}  # IoU 24/96 = 0.25: a TP only thanks to the small box rule
    out = evaluate_search(np.array([[1.0]]), [[("A", gt)]], dets, {"A": np.array([[1.0]])})
    assert out["mAP"] == 1.0 and out["top1"] == 1.0


def test_top_k_ties_follow_reversed_argsort():
    """Tied TP and negative: np.argsort(...)[::-1] puts the later pooled entry first (SeqNet)."""
    gt = np.array([0, 0, 10, 20], np.float32)
    dets = {"A": np.array([[0, 0, 10, 20, 1.0]]), "B": np.array([[30, 0, 40, 20, 1.0]])}
    feats = {"A": np.array([[0.5]]), "B": np.array([[0.5]])}
    q = np.array([[1.0]])
    tp_first = evaluate_search(q, [[("A", gt), ("B", None)]], dets, feats)
    tp_last = evaluate_search(q, [[("B", None), ("A", gt)]], dets, feats)
    assert tp_first["mAP"] == tp_last["mAP"] == pytest.approx(0.5)  # one threshold, precision 1/2
    assert tp_first["top1"] == 0.0 and tp_last["top1"] == 1.0
    assert tp_first["top5"] == tp_last["top5"] == 1.0  # fewer than k candidates: all of them


# ----------------------------------------------------------------------------------------- synthetic data
@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from personsearch.synthetic.config import make_config
    from personsearch.synthetic.generate import generate

    out = tmp_path_factory.mktemp("search_synth") / "tiny"
    generate(out, make_config("tiny"), workers=1, outputs=["cuhk_sysu", "prw"], progress=False)
    return out


def _perfect(dataset: SearchDataset):
    """GT boxes as detections; one-hot features per identity (each unlabeled box its own direction)."""
    pids = sorted({int(p) for s in dataset.gallery for p in s.pids if p != UNLABELED} |
                  {q.pid for q in dataset.queries})
    n_unlabeled = sum(int((s.pids == UNLABELED).sum()) for s in dataset.gallery)
    dim = len(pids) + n_unlabeled
    col = {p: i for i, p in enumerate(pids)}
    dets, feats, extra = {}, {}, len(pids)
    for s in dataset.gallery:
        f = np.zeros((len(s.boxes), dim), np.float32)
        for j, p in enumerate(s.pids.tolist()):
            if p == UNLABELED:
                f[j, extra] = 1
                extra += 1
            else:
                f[j, col[p]] = 1
        dets[s.name] = np.c_[s.boxes, np.ones(len(s.boxes))]
        feats[s.name] = f
    q = np.zeros((len(dataset.queries), dim))
    q[np.arange(len(q)), [col[x.pid] for x in dataset.queries]] = 1
    return q, dets, feats


def test_cuhk_sysu_builder_and_perfect_features(synth):
    from personsearch.data.cuhk_sysu import read_cuhk_sysu

    ds = read_cuhk_sysu(synth / "cuhk_sysu")
    sizes = sorted(ds.gallery_lists)
    for size in sizes:
        queries, galleries = cuhk_sysu_galleries(ds, size)
        assert queries == ds.queries and len(galleries) == len(queries)
        assert all(len(g) == min(size, len(ds.gallery) - 1) for g in galleries)
        q, dets, feats = _perfect(ds)
        out = evaluate_search(q, galleries, dets, feats)
        assert out == {"mAP": 1.0, "top1": 1.0, "top5": 1.0, "top10": 1.0}
        ref_map, ref_top, _ = reference_search(q, galleries, dets, feats)
        assert ref_map == pytest.approx(1.0) and ref_top == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=f"available: {', '.join(map(str, sizes))}"):
        cuhk_sysu_galleries(ds, 12345)


def test_prw_builder(synth):
    from personsearch.data.prw import read_prw

    ds = read_prw(synth / "prw")
    frames = {s.name: s for s in ds.gallery}
    for cross in (False, True):
        queries, galleries = prw_galleries(ds, cross_camera=cross)
        assert queries == ds.queries
        for query, gallery in zip(queries, galleries):
            entries = list(gallery)
            names = [n for n, _ in entries]
            assert query.image.name not in names and len(names) == len(set(names)) == len(gallery)
            expected = [s.name for s in ds.gallery
                        if s.name != query.image.name and (not cross or s.camid != query.camid)]
            assert names == expected
            for name, box in entries:
                scene = frames[name]
                if query.pid in scene.pids.tolist():
                    np.testing.assert_array_equal(box, scene.boxes[scene.pids.tolist().index(query.pid)])
                else:
                    assert box is None
            # indexing and slicing agree with iteration
            assert [n for n, _ in gallery[::3]] == names[::3] and gallery[-1][0] == names[-1]
            assert gallery[len(names) // 2][0] == names[len(names) // 2]
        q, dets, feats = _perfect(ds)
        assert evaluate_search(q, galleries, dets, feats) == {"mAP": 1.0, "top1": 1.0, "top5": 1.0, "top10": 1.0}
    assert sum(map(len, prw_galleries(ds, True)[1])) < sum(map(len, prw_galleries(ds, False)[1]))


def test_prw_lazy_gallery_equals_list_gallery(synth):
    from personsearch.data.prw import read_prw

    ds = read_prw(synth / "prw")
    rng = np.random.default_rng(0)
    dim = 3
    dets, feats = {}, {}
    for s in ds.gallery[::2] + ds.gallery[1::4]:  # some frames without detections
        boxes = np.vstack([s.boxes + rng.integers(-4, 5, s.boxes.shape), [[0, 0, 10, 30]]])
        dets[s.name] = np.c_[boxes, rng.choice([0.3, 0.8], len(boxes))]
        feats[s.name] = rng.integers(-2, 3, (len(boxes), dim)) / 2
    q = rng.integers(-2, 3, (len(ds.queries), dim)) / 2
    for cross in (False, True):
        _, lazy = prw_galleries(ds, cross_camera=cross)
        keep = [i for i, g in enumerate(lazy) if g.positive_boxes]
        lazy = [lazy[i] for i in keep]
        lists = [list(g) for g in lazy]
        fast = evaluate_search(q[keep], lazy, dets, feats)
        assert fast == evaluate_search(q[keep], lists, dets, feats)
        ref_map, ref_top, _ = reference_search(q[keep], lists, dets, feats)
        assert fast["mAP"] == pytest.approx(ref_map, abs=1e-12) and [fast[k] for k in KEYS] == ref_top


def _scene(name, boxes, pids):
    return SceneAnnotation(Path("/f") / name, np.array(boxes, np.float32), np.array(pids, np.int64), int(name[1]) - 1)


def test_prw_builder_first_box_of_pid_and_camera_filter():
    gallery = [_scene("c1s1_1.jpg", [[0, 0, 10, 30]], [7]),
               _scene("c1s1_2.jpg", [[5, 5, 15, 35], [40, 0, 50, 30]], [7, 7]),  # pid twice: first box
               _scene("c2s1_3.jpg", [[1, 1, 11, 31], [20, 0, 30, 30]], [UNLABELED, 8]),
               _scene("c3s1_4.jpg", [[2, 2, 12, 32]], [7])]
    query = SearchQuery(Path("/f/c1s1_1.jpg"), np.array([0, 0, 10, 30], np.float32), 7, 0)
    ds = SearchDataset("PRW", Path("/f"), [], gallery, [query])
    _, (g,) = prw_galleries(ds)
    assert [n for n, _ in g] == ["c1s1_2.jpg", "c2s1_3.jpg", "c3s1_4.jpg"]
    np.testing.assert_array_equal(g[0][1], [5, 5, 15, 35])
    assert g[1][1] is None and g[2][1] is not None
    _, (g,) = prw_galleries(ds, cross_camera=True)
    assert [n for n, _ in g] == ["c2s1_3.jpg", "c3s1_4.jpg"] and set(g.positive_boxes) == {3}
    assert isinstance(g, FrameGallery)
    bad = SearchDataset("PRW", Path("/f"), [], gallery, [SearchQuery(Path("/f/c9.jpg"), query.box, 7, 8)])
    with pytest.raises(ValueError, match="c9.jpg"):
        prw_galleries(bad)


# ----------------------------------------------------------------------------------------- bad input
def _good():
    gt, dets, feats = _hand_inputs()
    return np.array([[1.0, 0]]), [[("A", gt), ("B", None), ("Z", None)]], dets, feats


def test_listed_image_missing_everywhere_is_absent():
    q, galleries, dets, feats = _good()
    assert evaluate_search(q, galleries, dets, feats)["mAP"] == 1.0  # "Z" is in neither dict


@pytest.mark.parametrize("mutate, match", [
    (lambda q, g, d, f: f.update(A=np.zeros((2, 3))), "det_feats\\['A'\\] has dimension 3"),
    (lambda q, g, d, f: f.update(A=np.zeros((1, 2))), "image 'A': 2 detections but det_feats has shape \\(1, 2\\)"),
    (lambda q, g, d, f: f.pop("B"), "image 'B': 2 detections but 0 det_feats rows"),
    (lambda q, g, d, f: f.update(B=np.array([[np.nan, 0], [0, 0]])), "det_feats\\['B'\\] contains NaN"),
    (lambda q, g, d, f: d.update(A=np.zeros((2, 4))), "detections\\['A'\\] must be an \\(N, 5\\)"),
    (lambda q, g, d, f: d.update(A=np.array([[10, 0, 5, 5, 1.0], [0, 0, 1, 1, 1]])), "detections\\['A'\\] has a box"),
    (lambda q, g, d, f: d.update(A=np.array([[0, 0, 5, 5, np.nan], [0, 0, 1, 1, 1]])),
     "detections\\['A'\\] contains NaN"),
    (lambda q, g, d, f: q.__setitem__((0, 1), np.nan), "query 0"),
    (lambda q, g, d, f: g[0].__setitem__(0, ("A", np.array([0, 0, 10]))), "query 0, image 'A'"),
    (lambda q, g, d, f: g[0].__setitem__(0, ("A", np.array([0, 0, 0, 10]))), "query 0, image 'A'"),
    (lambda q, g, d, f: g[0].__setitem__(1, ("B",)), "galleries\\[0\\]\\[1\\]"),
    (lambda q, g, d, f: g[0].__setitem__(1, (Path("B"), None)), "must be a str"),
    (lambda q, g, d, f: g.append([("A", None)]), "galleries has 2 entries but query_feats has 1"),
    (lambda q, g, d, f: g[0].__setitem__(0, ("A", None)), "query 0 .*no GT box"),
])
def test_bad_input_is_refused(mutate, match):
    q, galleries, dets, feats = _good()
    galleries = [list(g) for g in galleries]
    mutate(q, galleries, dets, feats)
    with pytest.raises(ValueError, match=match):
        evaluate_search(q, galleries, dets, feats)


def test_naming_mismatch_warns():
    q, galleries, dets, feats = _good()
    with pytest.warns(UserWarning, match="no gallery image name is a key"):
        evaluate_search(q, galleries, {f"/data/{k}": v for k, v in dets.items()},
                        {f"/data/{k}": v for k, v in feats.items()})


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    qf, galleries, dets, feats = _random_problem(rng, integer_feats=True)
    expected = evaluate_search(qf, galleries, dets, feats)
    as_torch = evaluate_search(torch.from_numpy(qf), galleries, {k: torch.from_numpy(v) for k, v in dets.items()},
                               {k: torch.from_numpy(v) for k, v in feats.items()})
    assert as_torch == expected
