"""The synthetic benchmark renderer: identities, figures, cameras, scenes and crops."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from personsearch.synthetic.camera import (
    Camera, apply_imaging, camera_background, jpeg_quality, person_scale, sample_cameras,
)
from personsearch.synthetic.config import Difficulty
from personsearch.synthetic.figure import VIEWS, render_person
from personsearch.synthetic.identity import Identity, palette, sample_identities
from personsearch.synthetic.scene import PersonSpec, place_people, render_crop, render_scene

D = Difficulty()


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def ids() -> list[Identity]:
    return sample_identities(30, rng(1), D)


@pytest.fixture(scope="module")
def cams() -> list[Camera]:
    return sample_cameras(4, rng(2), D)


def plain(**changes) -> Identity:
    """A fixed, plain identity with clearly separated colours."""
    base = Identity(height=1.0, build=1.0, head=1.0, legs=1.0, skin=(230, 180, 140), hair=(24, 20, 18),
                    hair_style="short", upper_name="red", upper=(200, 30, 30), pattern="plain",
                    pattern_color=(240, 240, 240), sleeves="long", lower_name="jeans", lower=(50, 75, 125),
                    lower_type="trousers", shoes=(30, 30, 30), bag="none", bag_color=(40, 160, 60),
                    bag_side="left", hat=None)
    return replace(base, **changes)


def near(img: np.ndarray, color: tuple[int, int, int], tol: float = 45.0) -> np.ndarray:
    """Opaque pixels within ``tol`` (L1 / 3) of ``color``."""
    diff = np.abs(img[..., :3].astype(np.float32) - np.asarray(color, np.float32)).mean(axis=-1)
    return (diff < tol) & (img[..., 3] > 200)


# ---------------------------------------------------------------- identities

def test_identities_deterministic_and_seed_dependent():
    assert sample_identities(20, rng(5), D) == sample_identities(20, rng(5), D)
    assert sample_identities(20, rng(5), D) != sample_identities(20, rng(6), D)


def test_palette_size_knob_limits_shared_base_colours():
    d = replace(D, upper_colors=2, lower_colors=3, color_jitter=0.0)
    people = sample_identities(50, rng(3), d)
    assert len({p.upper_name for p in people}) <= 2 and len({p.upper for p in people}) <= 2
    assert len({p.lower_name for p in people}) <= 3
    allowed = {c for _, c in palette("upper", 2)}
    assert {p.upper for p in people} <= allowed
    wide = sample_identities(50, rng(3), replace(D, upper_colors=25))
    assert len({p.upper_name for p in wide}) > 10


def test_color_jitter_varies_shades_within_palette_entry():
    people = sample_identities(60, rng(4), replace(D, upper_colors=2, color_jitter=0.3))
    reds = {p.upper for p in people if p.upper_name == "red"}
    assert len(reds) > 5


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_probability_knobs(prob):
    people = sample_identities(40, rng(7), replace(D, bag_prob=prob, hat_prob=prob, pattern_prob=prob))
    assert all((p.bag != "none") == bool(prob) for p in people)
    assert all((p.hat is not None) == bool(prob) for p in people)
    assert all((p.pattern != "plain") == bool(prob) for p in people)


# ---------------------------------------------------------------- figure

@pytest.mark.parametrize("height", [20, 100, 250])
def test_render_person_size_alpha_tight(ids, height):
    for i, view in enumerate(VIEWS):
        img = render_person(ids[i], view, 0.1 + 0.2 * i, height, rng(i))
        a = np.asarray(img)
        assert img.mode == "RGBA" and abs(img.height - height) <= 1
        assert 0.15 * height < img.width < 0.9 * height
        alpha = a[..., 3]
        for edge in (alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]):
            assert edge.max() > 0  # tight on all four sides
        assert (alpha == 0).mean() > (0.2 if height >= 100 else 0.05)  # transparent around the body


def test_render_person_deterministic(ids):
    a = np.asarray(render_person(ids[0], "left", 0.3, 120, rng(9)))
    b = np.asarray(render_person(ids[0], "left", 0.3, 120, rng(9)))
    c = np.asarray(render_person(ids[0], "left", 0.3, 120, rng(10)))
    assert a.tobytes() == b.tobytes()
    assert a.shape != c.shape or a.tobytes() != c.tobytes()


def test_walking_phase_moves_limbs():
    widths = [render_person(plain(), "right", p, 150, rng(0)).width for p in (0.0, 0.25, 0.5, 0.75)]
    assert min(widths[1], widths[3]) > 1.2 * max(widths[0], widths[2])  # full stride vs legs passing
    chest = {v: int((np.asarray(render_person(plain(), v, 0.0, 150, rng(0)))[40, :, 3] > 128).sum())
             for v in ("front", "left")}
    assert chest["left"] < 0.75 * chest["front"]  # side views are narrower


def test_logo_visible_from_front_only():
    logo = plain(pattern="logo")
    chest = {}
    for view in ("front", "back"):
        a = np.asarray(render_person(logo, view, 0.0, 200, rng(0)))
        chest[view] = int(near(a[40:80], logo.pattern_color).sum())
    assert chest["front"] > 30 and chest["back"] == 0


def test_face_from_front_hair_from_back():
    person = plain()
    head = {v: np.asarray(render_person(person, v, 0.0, 200, rng(0)))[5:25] for v in ("front", "back")}
    assert near(head["front"], person.skin).sum() > 3 * near(head["back"], person.skin).sum()
    assert near(head["back"], person.hair).sum() > near(head["front"], person.hair).sum()


def test_backpack_big_from_back_straps_from_front():
    person = plain(bag="backpack")
    count = {v: int(near(np.asarray(render_person(person, v, 0.0, 200, rng(0))), person.bag_color).sum())
             for v in ("front", "back", "left")}
    assert count["back"] > 3 * count["front"] > 0
    assert count["back"] > count["left"] > 0


def test_upper_colour_changes_torso_colour():
    means = []
    for upper in ((200, 30, 30), (30, 60, 200)):
        a = np.asarray(render_person(plain(upper=upper), "front", 0.0, 200, rng(0))).astype(np.float32)
        torso = a[50:90, a.shape[1] // 2 - 8:a.shape[1] // 2 + 8, :3]
        means.append(torso.reshape(-1, 3).mean(0))
    assert means[0][0] - means[1][0] > 100 and means[1][2] - means[0][2] > 100


# ---------------------------------------------------------------- camera

def test_cameras_and_background_deterministic(cams):
    assert sample_cameras(4, rng(2), D) == cams
    assert sample_cameras(4, rng(3), D) != cams
    bg = camera_background(cams[0], 160, 120)
    assert bg.shape == (120, 160, 3) and bg.dtype == np.uint8
    bg[:] = 0  # a copy: the cache must not be affected
    assert camera_background(cams[0], 160, 120).std() > 3
    assert camera_background(cams[0], 160, 120).tobytes() != camera_background(cams[1], 160, 120).tobytes()


def test_perspective_farther_is_smaller(cams):
    for cam in cams:
        assert person_scale(cam, 0.5, D.scale_range) < person_scale(cam, 0.9, D.scale_range)


def test_imaging_deterministic_and_off_without_degradation(cams):
    img = camera_background(cams[0], 96, 64)
    a, b = (apply_imaging(img, cams[0], rng(4), D) for _ in range(2))
    assert a.dtype == np.uint8 and a.shape == img.shape and a.tobytes() == b.tobytes()
    assert a.tobytes() != apply_imaging(img, cams[0], rng(5), D).tobytes()
    clean = replace(D, lighting=0.0, blur_max=0.0, noise_max=0.0)
    cam = sample_cameras(1, rng(6), clean)[0]
    assert np.array_equal(apply_imaging(img, cam, rng(7), clean), img)


def test_lighting_knob_changes_camera_colour(cams):
    grey = np.full((32, 32, 3), 128, np.uint8)
    spread = {}
    for light in (0.0, 1.0):
        d = replace(D, lighting=light, noise_max=0.0)
        means = [apply_imaging(grey, c, rng(0), d).reshape(-1, 3).mean(0) for c in sample_cameras(8, rng(1), d)]
        spread[light] = float(np.std(means))
    assert spread[0.0] < 0.5 < 5 < spread[1.0]


def test_jpeg_quality_in_range(cams):
    d = replace(D, jpeg_quality=(40, 60))
    qs = [jpeg_quality(c, rng(i), d) for i, c in enumerate(cams * 5)]
    assert all(40 <= q <= 60 for q in qs) and len(set(qs)) > 2


# ---------------------------------------------------------------- scenes

def test_place_people_perspective_and_inside(ids, cams):
    heights, feet = [], []
    for k, cam in enumerate(cams):
        for spec in place_people(ids[:8], cam, 320, 240, rng(k), D):
            x1, y1, x2, y2 = spec.box
            inside = (min(x2, 320) - max(x1, 0)) * (min(y2, 240) - max(y1, 0)) / ((x2 - x1) * (y2 - y1))
            assert inside >= 0.7 and spec.view in VIEWS and 0 <= spec.phase < 1
            heights.append((y2 - y1) / spec.identity.height)
            feet.append(y2)
        heights_c, feet_c = np.asarray(heights[-8:]), np.asarray(feet[-8:])
        assert np.corrcoef(heights_c, feet_c)[0, 1] > 0.9  # farther (higher) people are smaller


def test_render_scene_outputs(ids, cams):
    people = place_people(ids[:6], cams[1], 320, 240, rng(3), D)
    img, boxes, vis = render_scene(cams[1], people, 320, 240, rng(4), D)
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert boxes.shape == (6, 4) and boxes.dtype == np.float32 and vis.shape == (6,) and vis.dtype == np.float32
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 320).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 3] <= 240).all() and (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert ((vis >= 0) & (vis <= 1)).all()
    for spec, box in zip(people, boxes):  # rendered box follows the planned one (height, foot, centre)
        assert abs(box[3] - min(spec.box[3], 240)) <= 1.5
        assert abs(0.5 * (box[0] + box[2]) - 0.5 * (spec.box[0] + spec.box[2])) < 0.25 * (spec.box[3] - spec.box[1])
    again = render_scene(cams[1], people, 320, 240, rng(4), D)
    assert again[0].tobytes() == img.tobytes() and np.array_equal(again[1], boxes)
    assert render_scene(cams[1], people, 320, 240, rng(5), D)[0].tobytes() != img.tobytes()


def test_visibility_of_person_behind_another(cams):
    far = PersonSpec(plain(), (140.0, 60.0, 180.0, 160.0), "front", 0.0)
    close = PersonSpec(plain(upper=(30, 60, 200), build=1.2), (125.0, 40.0, 195.0, 200.0), "front", 0.0)
    alone = PersonSpec(plain(), (20.0, 60.0, 60.0, 160.0), "back", 0.0)
    _, boxes, vis = render_scene(cams[0], [far, close, alone], 320, 240, rng(0), D)
    assert vis[0] < 0.6 and vis[1] == 1.0 and vis[2] == 1.0
    assert render_scene(cams[0], [], 320, 240, rng(0), D)[1].shape == (0, 4)


def test_render_crop(ids, cams):
    crop = render_crop(cams[0], ids[0], rng(1), D)
    assert crop.shape == (128, 64, 3) and crop.dtype == np.uint8
    assert render_crop(cams[0], ids[0], rng(1), D).tobytes() == crop.tobytes()
    assert render_crop(cams[0], ids[0], rng(2), D).tobytes() != crop.tobytes()
    small = render_crop(cams[2], ids[1], rng(3), D, width=48, height=96, occluder=ids[2])
    assert small.shape == (96, 48, 3)
    occluded = [render_crop(cams[0], ids[0], rng(s), D, occluder=ids[3]) for s in range(6)]
    assert all(o.shape == (128, 64, 3) for o in occluded)


def test_crop_jitter_knob_moves_the_person():
    person, cam = plain(upper=(230, 30, 30)), sample_cameras(1, rng(8), replace(D, lighting=0.0))[0]
    spread = {}
    for jit in (0.0, 0.4):
        d = replace(D, crop_jitter=jit, lighting=0.0)
        centres = []
        for s in range(12):
            mask = near(np.dstack([render_crop(cam, person, rng(s), d), np.full((128, 64), 255, np.uint8)]),
                        person.upper, 60)
            centres.append(np.nonzero(mask)[1].mean())
        spread[jit] = float(np.std(centres))
    assert spread[0.4] > 2 * spread[0.0] + 1
