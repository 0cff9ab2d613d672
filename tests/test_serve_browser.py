"""End to end on real video: the pretrained model through the API, then the web page in headless Chromium.

The index holds frames 100, 104, ..., 120 of Debian's ``vtest.avi`` (package opencv-doc). The browser
is Debian's chromium driven by Playwright (never a downloaded browser); without either the tests
fail naming the package to install (`make test` installs both through tools/system_deps.sh).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastapi.testclient import TestClient
from serve_fakes import serving
from system_files import VTEST, require_chromium, require_vtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_footage  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUERY_FRAME = 100

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vtest(tmp_path_factory) -> dict:
    """The index over a few vtest frames, the searcher, and frame 100 as a JPEG query file."""
    require_vtest()
    from personsearch.index import PersonIndex
    from personsearch.index.frames import read_video_frame
    from personsearch.pipelines import load_searcher

    folder = tmp_path_factory.mktemp("vtest")
    searcher = load_searcher("pretrained")
    index = PersonIndex.create(folder / "index", model="pretrained", dim=searcher.dim)
    report = index.add_video(searcher, VTEST, every=4, start=QUERY_FRAME, stop=QUERY_FRAME + 21, progress=False)
    assert report.images == 6 and report.people >= 12
    index.close()
    query = read_video_frame(VTEST, QUERY_FRAME)
    Image.fromarray(query).save(folder / "query.jpg", quality=95)
    return {"index": folder / "index", "searcher": searcher, "query": folder / "query.jpg", "rgb": query,
            "people": report.people}


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda x: (x[2] - x[0]) * (x[3] - x[1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def _on_track(hits, track) -> int:
    """Hits in other frames on the ground-truth track of the benchmark (IoU >= 0.5 with its box there)."""
    return sum(1 for h in hits if h["frame"] != QUERY_FRAME and h["frame"] in track and _iou(h["box"], track[h["frame"]]) >= 0.5)


def test_the_real_model_finds_the_query_person_in_nearby_frames(vtest):
    from personsearch.serve import create_app

    client = TestClient(create_app(vtest["index"], searcher=vtest["searcher"]), base_url="http://localhost")
    with open(vtest["query"], "rb") as handle:
        data = handle.read()
    result = client.post("/api/query", files={"image": ("q.jpg", data, "image/jpeg")}, data={"top_k": "6"}).json()
    assert result["box_source"] == "detected" and result["det_score"] > 0.5
    box, hits = result["box"], result["hits"]
    assert hits[0]["frame"] == QUERY_FRAME and _iou(hits[0]["box"], box) > 0.8 and hits[0]["similarity"] > 0.95
    assert hits[0]["timestamp"] > 0 and hits[0]["source"] == VTEST.name  # the file name: no server path in answers
    # a given box: the man standing on the right (track 0 of benchmarks/data/vtest_tracks.json, hand-checked)
    track = real_footage.load_people()[0]["boxes"]
    given = client.post("/api/query", files={"image": ("q.jpg", data, "image/jpeg")},
                        data={"top_k": "6", "box": ",".join(map(str, track[QUERY_FRAME]))}).json()
    assert given["box_source"] == "given" and given["hits"][0]["frame"] == QUERY_FRAME
    assert _on_track(given["hits"][1:], track) >= 4  # of the 5 other frames (plain ImageNet features: 1)
    frame = np.asarray(Image.open(io.BytesIO(client.get(hits[1]["image_url"]).content)))
    assert frame.shape == vtest["rgb"].shape


# ---------------------------------------------------------------------------- the page in Chromium
@pytest.fixture(scope="module")
def server(vtest):
    """The real app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    from personsearch.serve import create_app

    with serving(create_app(vtest["index"], searcher=vtest["searcher"])) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api  # a dev dependency (pyproject.toml)

    executable = require_chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def _local_page(browser, base: str):
    """A fresh page that may only talk to the server at ``base`` (any other request fails the test)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(base) or route.request.url.startswith(("blob:", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert not outside, f"the page tried to reach other hosts: {outside}"
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture()
def page(browser, server):
    with _local_page(browser, server) as page:
        yield page


def _drag(page, box, image_size) -> None:
    """Press, move and release the mouse over the canvas from ``box``'s corner to the opposite one."""
    area = page.locator("#canvas").bounding_box()
    sx, sy = area["width"] / image_size[0], area["height"] / image_size[1]
    page.mouse.move(area["x"] + box[0] * sx, area["y"] + box[1] * sy)
    page.mouse.down()
    page.mouse.move(area["x"] + box[2] * sx, area["y"] + box[3] * sy, steps=8)
    page.mouse.up()


def _region(shot: np.ndarray, area: dict) -> np.ndarray:
    x, y = int(area["x"]), int(area["y"])
    return shot[y:y + int(area["height"]), x:x + int(area["width"])]


def test_search_by_drawing_a_box_in_the_page(page, server, vtest, tmp_path):
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('stats').textContent.includes('people')")
    assert f"{vtest['people']} people" in page.text_content("#stats")
    page.set_input_files("#query-file", str(vtest["query"]))
    page.wait_for_function("document.getElementById('box-info').textContent.includes('(detected)')", timeout=20_000)
    # draw the box around the most confident person by mouse (the detector's own box, a little larger)
    people = vtest["searcher"](vtest["rgb"])
    best = people["boxes"][int(np.argmax(people["scores"]))]
    drawn = best + np.array([-4, -4, 4, 4])
    height, width = vtest["rgb"].shape[:2]
    _drag(page, drawn, (width, height))
    info = page.text_content("#box-info")
    assert "(drawn)" in info
    shown = [float(v) for v in info.split(":")[1].split(",")]
    assert np.abs(np.array(shown) - drawn).max() < 3  # the page's box is where the mouse went
    page.fill("#top-k", "8")
    page.click("#search")
    page.wait_for_function("""() => {
        const hits = document.querySelectorAll('#hits .hit');
        const images = document.querySelectorAll('#hits img');
        return hits.length > 0 && [...images].every((img) => img.complete && img.naturalWidth > 0);
    }""", timeout=30_000)
    hits = page.locator("#hits .hit")
    assert hits.count() == 8
    first_box = [float(v) for v in hits.first.get_attribute("data-box").split(",")]
    assert _iou(first_box, best) > 0.6  # the query person itself, in frame 100
    assert "frame 100" in hits.first.text_content()
    assert page.is_hidden("#error")
    shot_path = tmp_path / "page.png"
    page.screenshot(path=str(shot_path), full_page=True)
    shot = np.asarray(Image.open(shot_path).convert("RGB")).astype(np.float32)
    assert shot.shape[0] >= 600 and shot.std() > 20  # not a blank page
    for i in range(3):  # each hit thumbnail and frame was drawn: a picture, not the empty grey box
        for image in (hits.nth(i).locator("img.thumb"), hits.nth(i).locator("img.frame")):
            pixels = _region(shot, image.bounding_box())
            assert pixels.size and pixels.std() > 15
    canvas = _region(shot, page.locator("#canvas").bounding_box())
    assert canvas.std() > 20
    # clicking a hit opens its frame; searching from there searches for that indexed person by id
    second = int(hits.nth(1).get_attribute("data-id"))
    hits.nth(1).click()
    page.wait_for_selector("#viewer[open]")
    page.click("#viewer-query")
    _wait_for_search_by_id(page, second)


def _wait_for_search_by_id(page, person: int) -> None:
    """Wait until the results are those of the indexed person ``person``, the query box theirs."""
    page.wait_for_function(f"""() => document.getElementById('results-info').textContent.includes('person #{person}')
        && document.querySelector('#hits .hit') !== null
        && document.querySelector('#hits .hit').dataset.id === '{person}'""", timeout=30_000)
    assert f"(indexed #{person})" in page.text_content("#box-info")
    assert page.is_hidden("#error")


def test_follow_people_by_clicking_them_in_hit_frames(page, server, vtest):
    """Chained searches: open a hit's frame, click another person in it, and search for them; twice."""
    import httpx

    page.goto(server + "/")
    page.set_input_files("#query-file", str(vtest["query"]))
    page.wait_for_function("document.getElementById('box-info').textContent.includes('(detected)')", timeout=20_000)
    page.click("#search")
    page.wait_for_selector("#hits .hit", timeout=30_000)
    followed: list[int] = []
    for _ in range(2):
        hits = page.locator("#hits .hit")
        ids = [int(hits.nth(i).get_attribute("data-id")) for i in range(hits.count())]
        frames = {i: httpx.get(f"{server}/api/hits/{i}/people").json()["people"] for i in ids}
        rank, hit_id, target = next((rank, i, p["id"]) for rank, i in enumerate(ids) for p in frames[i]
                                    if p["id"] != i and p["id"] not in followed)  # someone else in its frame
        hits.nth(rank).click()
        page.wait_for_selector("#viewer[open] #viewer-people .person")
        boxes = page.locator("#viewer-people .person")
        assert boxes.count() == len(frames[hit_id]) >= 2  # every person indexed in that frame, clickable
        assert int(page.locator("#viewer-people .person.current").get_attribute("data-id")) == hit_id
        person = page.locator(f"#viewer-people .person[data-id='{target}']")
        area = person.bounding_box()
        assert area["width"] > 4 and area["height"] > 8  # drawn where the person is, not collapsed
        person.click()
        _wait_for_search_by_id(page, target)
        assert not page.locator("#viewer").evaluate("dialog => dialog.open")
        followed.append(target)
    assert len(set(followed)) == 2


def test_errors_are_shown_in_the_page(page, server):
    page.goto(server + "/")
    page.set_input_files("#query-file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}])
    page.wait_for_selector("#error:not([hidden])")
    assert "notes.txt" in page.text_content("#error-text")
    page.click("#error-close")
    assert page.is_hidden("#error")
    # the server's answer to a non-image added to the index (415) is shown too
    page.set_input_files("#add-files", files=[{"name": "readme.txt", "mimeType": "text/plain", "buffer": b"no"}])
    page.click("#add-form button[type=submit]")
    page.wait_for_selector("#error:not([hidden])")
    text = page.text_content("#error-text")
    assert "readme.txt" in text and "not an image" in text and "415" in text


def test_adapt_the_index_to_its_video_from_the_page(browser, vtest, tmp_path):
    """The real adaptation on the indexed vtest frames, started and followed in the page; the server
    then embeds queries with the adapted model."""
    import httpx

    from personsearch.serve import create_app

    from personsearch.index import PersonIndex

    shutil.copytree(vtest["index"], tmp_path / "index")  # the other tests keep the unadapted index
    index = PersonIndex.open(tmp_path / "index")  # more of the walk: people followed over 16 frames
    people = len(index) + index.add_video(vtest["searcher"], VTEST, every=4, start=QUERY_FRAME + 24,
                                           stop=QUERY_FRAME + 64, progress=False).people
    frame, box = index.frame_image(0), index.hit(0).box
    index.close()
    with serving(create_app(tmp_path / "index")) as base, _local_page(browser, base) as page:
        page.goto(base + "/")
        page.wait_for_function("document.getElementById('adapt-panel').dataset.state === 'idle'")
        page.fill("#adapt-steps", "4")
        page.click("#adapt-start")
        page.wait_for_function("document.getElementById('adapt-panel').dataset.state === 'running'")
        page.wait_for_function("!['running', 'idle'].includes(document.getElementById('adapt-panel').dataset.state)",
                               timeout=180_000)
        info = page.text_content("#adapt-info")
        assert page.get_attribute("#adapt-panel", "data-state") == "done", info
        assert "adapted:" in info and "4 steps" in info and f"{people} people" in info
        assert page.is_hidden("#adapt-stop") and page.is_hidden("#error")
        page.wait_for_function("document.getElementById('stats').textContent.includes('weights=adapt/embedder-')")
        status = httpx.get(f"{base}/api/adapt").json()
        assert status["report"]["tracklets"] >= 2 and status["report"]["last_loss"] >= 0
        png = io.BytesIO()
        Image.fromarray(frame).save(png, format="PNG")  # person 0's frame as indexed: embedded anew, alike
        answer = httpx.post(f"{base}/api/query", files={"image": ("q.png", png.getvalue(), "image/png")},
                            data={"box": ",".join(f"{v:.3f}" for v in box), "top_k": "1"}).json()
        assert answer["hits"][0]["id"] == 0 and answer["hits"][0]["similarity"] > 0.999


def test_api_docs_render_offline(page, server):
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 6
    assert "/api/query" in page.text_content("body")
