"""Robustness: the REST API under abuse. Every input maps to a 4xx naming the field (never a 500),
decoded pixels are bounded per image and per server, cross-site writes and foreign Host names are
refused, and no response shows the server's absolute paths."""

from __future__ import annotations

import asyncio
import fcntl
import io
import struct
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from serve_fakes import COLOURS, FakeSearcher, encode, gallery, person_box, scene  # noqa: E402

from personsearch.serve import create_app  # noqa: E402
from personsearch.serve.budget import PixelBudget  # noqa: E402
from personsearch.serve.limits import BodyLimitMiddleware  # noqa: E402

pytestmark = pytest.mark.robustness
LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def index_path(tmp_path_factory) -> Path:
    return gallery(tmp_path_factory.mktemp("robust_api"))


@pytest.fixture(scope="module")
def client(index_path) -> TestClient:
    return TestClient(create_app(index_path, searcher=FakeSearcher()), base_url=LOCAL)


@pytest.fixture()
def fresh(tmp_path) -> TestClient:
    return TestClient(create_app(gallery(tmp_path), searcher=FakeSearcher()), base_url=LOCAL)


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` RGB pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(4096), 9)) + chunk(b"IEND", b"")


def _file(data: bytes, name: str = "q.png", kind: str = "image/png") -> dict:
    return {"image": (name, data, kind)}


# -- pixels: per image and per server -------------------------------------------------------------
@pytest.mark.parametrize("size", [(7000, 7000), (20000, 20000), (65535, 65535), (100000, 1)])
def test_decompression_bombs_are_refused_before_decoding(client, size):
    tracemalloc.start()
    try:
        for path in ("/api/query", "/api/detect"):
            response = client.post(path, files=_file(_png_header_only(*size), "bomb.png"))
            assert response.status_code in (413, 422), response.text
            assert response.json()["detail"].startswith("image (bomb.png)")
        response = client.post("/api/images", files={"images": ("bomb.png", _png_header_only(*size), "image/png")})
        assert response.status_code in (413, 422) and response.json()["detail"].startswith("images (bomb.png)")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # nothing near the declared size was allocated


def test_the_pixel_budget_bounds_pixels_decoded_at_once(index_path):
    """Six concurrent requests of 160x120 images against a budget of two such images."""
    searcher = FakeSearcher(delay=0.05)
    app = create_app(index_path, searcher=searcher, max_image_pixels=160 * 120, pixel_budget=2 * 160 * 120)
    budget: PixelBudget = app.state.service.budget
    client = TestClient(app, base_url=LOCAL)
    codes: list[int] = []

    def call(path):
        codes.append(client.post(path, files=_file(encode(scene(*COLOURS[1])))).status_code)

    threads = [threading.Thread(target=call, args=(p,)) for p in ("/api/detect", "/api/query") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert codes == [200] * 6
    assert budget.peak <= budget.total and budget.in_use == 0
    big = client.post("/api/detect", files=_file(encode(scene(*COLOURS[1], size=(161, 120)))))
    assert big.status_code == 413 and "megapixels the server accepts" in big.json()["detail"]


def test_a_request_waits_for_the_budget_then_gets_a_503():
    budget = PixelBudget(total=100, wait_s=0.2)
    with budget.reserve(80):
        with pytest.raises(Exception) as info:
            with budget.reserve(50):
                pass
        assert getattr(info.value, "status", None) == 503
    with budget.reserve(100):
        assert budget.in_use == 100
    assert budget.in_use == 0


# -- every input a 4xx naming the field -------------------------------------------------------------
@pytest.mark.parametrize("size", [(1, 300), (300, 1), (1, 1), (7, 200)])
def test_thin_images_are_422s_naming_the_image(client, size):
    thin = encode(np.full((size[1], size[0], 3), 120, np.uint8))
    for path in ("/api/detect", "/api/query"):
        response = client.post(path, files=_file(thin, "thin.png"))
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("image (thin.png)") and "too small" in response.json()["detail"]


def test_a_searcher_refusing_an_image_is_a_422_naming_it(index_path):
    class Refusing(FakeSearcher):
        def __call__(self, image):
            raise ValueError("image is too small: shape (9, 9, 3)")

    client = TestClient(create_app(index_path, searcher=Refusing()), base_url=LOCAL)
    for path in ("/api/detect", "/api/query"):
        response = client.post(path, files=_file(encode(scene(*COLOURS[0]))))
        assert response.status_code == 422 and response.json()["detail"].startswith("image: image is too small")


@pytest.mark.parametrize("person_id", [str(2**63), str(2**64), "1" + "0" * 30, "-1", "1e3", "0x10", "1.5", "%00"])
def test_out_of_range_and_odd_ids_are_422s_naming_the_id(client, person_id):
    for kind in ("image", "thumbnail"):
        response = client.get(f"/api/hits/{person_id}/{kind}")
        assert response.status_code == 422, (person_id, response.text)
        assert response.json()["detail"].startswith("person_id")


def test_the_largest_id_is_a_404(client):
    response = client.get(f"/api/hits/{2**63 - 1}/image")
    assert response.status_code == 404 and "no person with id" in response.json()["detail"]


@pytest.mark.parametrize("body, content_type", [
    (b"--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nabc", "multipart/form-data; boundary=x"),
    (b"garbage without boundaries", "multipart/form-data; boundary=zzz"),
    (b"--x--\r\n", "multipart/form-data"),
    (b'{"image": "abc"}', "application/json"),
    (b"image=abc", "application/x-www-form-urlencoded"),
    (b"", "multipart/form-data; boundary=x"),
])
def test_malformed_multipart_is_a_4xx(client, body, content_type):
    for path in ("/api/query", "/api/detect", "/api/images"):
        response = client.post(path, content=body, headers={"content-type": content_type})
        assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)
        assert isinstance(response.json()["detail"], str)


def test_too_many_files_in_one_add_is_a_422_naming_the_field(fresh):
    files = [("images", (f"{i}.png", encode(scene(*COLOURS[0])), "image/png")) for i in range(65)]
    response = fresh.post("/api/images", files=files)
    assert response.status_code == 422 and response.json()["detail"].startswith("images: ")
    assert "at most 64" in response.json()["detail"]
    assert fresh.get("/api/stats").json()["index"]["people"] == len(COLOURS)


def test_16_bit_grey_uploads_keep_their_grey_levels(client):
    from personsearch.serve.uploads import decode_image, probe_image

    grey = np.full((40, 30), 0x4000, np.uint16)  # a quarter of the 16-bit range
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    upload = decode_image(probe_image(buffer.getvalue(), "image/png", "grey16.png"))
    assert upload.rgb.shape == (40, 30, 3) and np.abs(upload.rgb.astype(int) - 64).max() <= 1


# -- who may talk to the server ------------------------------------------------------------------
def test_cross_origin_writes_are_refused_and_nothing_is_indexed(fresh):
    image = ("images", ("x.png", encode(scene((10, 250, 10), (250, 10, 250))), "image/png"))
    before = fresh.get("/api/stats").json()["index"]["people"]
    for origin in ("http://evil.example", "null", "http://localhost.evil.example", "http://localhost:9999",
                   "https://localhost", "file://", "garbage"):
        response = fresh.post("/api/images", files=[image], headers={"origin": origin})
        assert response.status_code == 403, (origin, response.text)
        assert "cross-origin" in response.json()["detail"]
        query = fresh.post("/api/query", files=_file(encode(scene(*COLOURS[0]))), headers={"origin": origin})
        assert query.status_code == 403
    assert fresh.get("/api/stats").json()["index"]["people"] == before
    assert not any((Path(fresh.app.state.service.upload_dir)).glob("*.png"))
    same = fresh.post("/api/images", files=[image], headers={"origin": "http://localhost"})
    assert same.status_code == 200 and same.json()["images"] == 1
    assert fresh.get("/api/stats", headers={"origin": "http://evil.example"}).status_code == 200  # reads: no change


def test_allowed_origins_may_write(index_path):
    app = create_app(index_path, searcher=FakeSearcher(), allowed_origins=["http://app.example:3000"])
    client = TestClient(app, base_url=LOCAL)
    response = client.post("/api/detect", files=_file(encode(scene(*COLOURS[0]))),
                           headers={"origin": "HTTP://APP.EXAMPLE:3000"})
    assert response.status_code == 200
    assert client.post("/api/detect", files=_file(encode(scene(*COLOURS[0]))),
                       headers={"origin": "http://app.example"}).status_code == 403


@pytest.mark.parametrize("host, status", [
    ("localhost", 200), ("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200), ("LOCALHOST", 200),
    ("localhost.", 200), ("evil.example", 400), ("localhost.evil.example", 400), ("127.0.0.1.nip.io", 400),
    ("localhost:abc", 400), ("", 400), ("user@localhost", 400), ("[::1", 400), ("a" * 5000, 400),
])
def test_host_headers_are_allow_listed(client, host, status):
    response = client.get("/api/stats", headers={"host": host})
    assert response.status_code == status, response.text
    if status == 400:
        assert "is not served here" in response.json()["detail"] and len(response.text) < 1000


def test_any_host_when_configured(index_path):
    client = TestClient(create_app(index_path, searcher=FakeSearcher(), allowed_hosts=["*"]))
    assert client.get("/api/stats", headers={"host": "search.lan:8000"}).status_code == 200


def test_responses_do_not_show_absolute_paths(client, index_path):
    secret = str(index_path.parent)
    query = client.post("/api/query", files=_file(encode(scene(*COLOURS[2]))))
    stats = client.get("/api/stats")
    assert query.status_code == 200 and stats.status_code == 200
    assert query.json()["hits"][0]["source"] == "scene2.png"
    for response in (query, stats):
        assert secret not in response.text and str(Path.home()) + "/" not in response.text


# -- adds ----------------------------------------------------------------------------------------------
def test_an_upload_refused_with_409_does_not_stay_in_uploads(fresh):
    service = fresh.app.state.service
    lock = open(service.index.path / ".write.lock", "a+")  # another writer holds the index
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        response = fresh.post("/api/images", files=[("images", ("n.png", encode(scene((1, 2, 250), (250, 2, 1))),
                                                                 "image/png"))])
    finally:
        lock.close()
    assert response.status_code == 409 and str(service.index.path) not in response.text
    assert not list(Path(service.upload_dir).glob("*"))


def test_a_stalled_body_gets_a_408():
    answered = []

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        await asyncio.sleep(5)  # a client that stopped sending
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message):
        answered.append(message)

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"100")]}
    asyncio.run(asyncio.wait_for(BodyLimitMiddleware(app, max_bytes=1000, timeout_s=0.2)(scope, receive, send), 3))
    assert answered[0]["status"] == 408 and b"did not arrive" in answered[1]["body"]


def test_boxes_stay_checked(client):
    box = ",".join(f"{v:g}" for v in person_box(160, 120))
    for bad in ("1e309,0,5,5", "0,0,1e308,1e308", "-inf,0,5,5", "0,0,5"):
        response = client.post("/api/query", files=_file(encode(scene(*COLOURS[0]))), data={"box": bad})
        assert response.status_code == 422 and response.json()["detail"].startswith("box"), (bad, response.text)
    assert client.post("/api/query", files=_file(encode(scene(*COLOURS[0]))), data={"box": box}).status_code == 200
