"""The REST API with a fake searcher (fast, deterministic): queries, hits, stats, adds, limits, errors."""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastapi.testclient import TestClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from serve_fakes import COLOURS, DIM, FakeSearcher, encode, gallery, person_box, scene  # noqa: E402

from personsearch.serve import create_app  # noqa: E402
from personsearch.serve.limits import BodyLimitMiddleware  # noqa: E402
from personsearch.serve.render import BOX_COLOUR  # noqa: E402

LIMIT = 200_000


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    """A read-mostly app over a 5-person gallery (tests that add images use ``fresh``)."""
    index = gallery(tmp_path_factory.mktemp("serve"))
    return TestClient(create_app(index, searcher=FakeSearcher(), max_upload_bytes=LIMIT), base_url="http://localhost")


@pytest.fixture()
def fresh(tmp_path) -> TestClient:
    return TestClient(create_app(gallery(tmp_path), searcher=FakeSearcher(delay=0.02), max_upload_bytes=LIMIT),
                      base_url="http://localhost")


def _png(colours=COLOURS[1], **kwargs) -> tuple[str, bytes, str]:
    return ("query.png", encode(scene(*colours, **kwargs)), "image/png")


def _jpeg_image(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


def test_openapi_lists_the_endpoints_with_response_models(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/query", "/api/detect", "/api/hits/{person_id}/image", "/api/hits/{person_id}/thumbnail",
            "/api/hits/{person_id}/similar", "/api/hits/{person_id}/people", "/api/stats",
            "/api/images", "/api/adapt"} <= set(schema["paths"])
    ok = schema["paths"]["/api/query"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/QueryOut")
    assert {"HitOut", "QueryOut", "DetectOut", "AddOut", "StatsOut", "ErrorOut", "FrameOut"} <= set(
        schema["components"]["schemas"])
    assert "413" in schema["paths"]["/api/images"]["post"]["responses"]


def test_openapi_declares_one_error_shape_for_every_status_of_every_route(client):
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            statuses = operation["responses"]
            assert "400" in statuses, (method, path)  # Host not served: any route
            if method == "post":  # any body: cross-origin, slow, too large, invalid
                assert {"403", "408", "413", "422"} <= set(statuses), path
                if "multipart/form-data" in operation["requestBody"]["content"]:  # images
                    assert {"415", "503"} <= set(statuses), path
            if "{person_id}" in path:
                assert {"404", "422"} <= set(statuses), path
            for status, answer in statuses.items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut"), (path, status)


def test_openapi_states_required_fields_formats_and_ranges(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    query = schemas["Body_query_api_query_post"]
    assert query["required"] == ["image"]
    assert query["properties"]["image"]["format"] == "binary" and query["properties"]["image"]["minLength"] == 1
    assert (query["properties"]["top_k"]["minimum"], query["properties"]["top_k"]["maximum"]) == (1, 200)
    box = query["properties"]["box"]
    assert box["type"] == "string" and box["format"] == "box"  # never null: multipart has no null
    pattern = re.compile(box["pattern"])
    assert all(pattern.search(text) for text in ("", "1,2,30,40", "1.5, 2 ,30.25,40"))
    assert not any(pattern.search(text) for text in ("1,2,3", "-1,2,3,4", "1e3,2,3,4", "nan,1,2,3", "1 2 3 4"))
    assert all(body["additionalProperties"] is False for name, body in schemas.items() if name.startswith("Body_"))
    images = schemas["Body_add_images_api_images_post"]
    assert images["required"] == ["images"]
    assert (images["properties"]["images"]["minItems"], images["properties"]["images"]["maxItems"]) == (1, 64)
    assert images["properties"]["images"]["items"]["format"] == "binary"
    encoding = client.get("/openapi.json").json()["paths"]["/api/query"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["encoding"]
    assert encoding["image"]["contentType"] == "image/jpeg, image/png, image/bmp"


def test_docs_page_loads_its_assets_from_this_server(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs-assets/{asset}" in page.text
        assert client.get(f"/docs-assets/{asset}").status_code == 200


def test_web_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for name in ("app.js", "viewer.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_query_without_a_box_uses_the_most_confident_person(client):
    response = client.post("/api/query", files={"image": _png()}, data={"top_k": "3"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["box_source"] == "detected" and result["det_score"] == pytest.approx(0.9)
    assert result["box"] == pytest.approx(person_box(160, 120).tolist())
    assert (result["width"], result["height"]) == (160, 120)
    hits = result["hits"]
    assert len(hits) == 3 and hits[0]["id"] == 1 and hits[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)
    assert hits[0]["source"].endswith("scene1.png") and hits[0]["frame"] is None
    assert hits[0]["image_url"] == "/api/hits/1/image" and hits[0]["thumbnail_url"] == "/api/hits/1/thumbnail"


def test_query_with_a_box_uses_that_box(client):
    # the query image is twice as large and shifted: only the given box makes it match
    query = scene(*COLOURS[3], size=(320, 240))
    box = person_box(320, 240)
    response = client.post("/api/query", files={"image": ("q.jpg", encode(query, "JPEG"), "image/jpeg")},
                           data={"box": ",".join(f"{v:g}" for v in box), "top_k": "2"})
    result = response.json()
    assert response.status_code == 200, result
    assert result["box_source"] == "given" and result["det_score"] is None
    assert result["box"] == pytest.approx(box.tolist())
    assert result["hits"][0]["id"] == 3 and result["hits"][0]["similarity"] > 0.99


def test_query_with_rerank_reports_rerank_distances(client):
    result = client.post("/api/query", files={"image": _png(COLOURS[0])}, data={"rerank": "true", "top_k": "4"}).json()
    assert result["hits"][0]["id"] == 0
    distances = [h["rerank_distance"] for h in result["hits"]]
    assert all(d is not None for d in distances) and distances == sorted(distances)


def test_no_person_in_the_query_image_is_a_422_saying_so(client):
    black = ("black.png", encode(np.zeros((100, 80, 3), np.uint8)), "image/png")
    response = client.post("/api/query", files={"image": black})
    assert response.status_code == 422
    assert "no person was found" in response.json()["detail"]


def test_detect_lists_the_people(client):
    result = client.post("/api/detect", files={"image": _png()}).json()
    assert (result["width"], result["height"]) == (160, 120)
    assert len(result["people"]) == 1 and result["people"][0]["score"] == pytest.approx(0.9)
    assert result["people"][0]["box"] == pytest.approx(person_box(160, 120).tolist())


def test_hit_image_has_the_box_drawn_and_thumbnail_is_the_crop(client):
    frame = _jpeg_image(client.get("/api/hits/2/image"))
    assert frame.shape == (120, 160, 3)
    x1, y1, x2, y2 = person_box(160, 120).round().astype(int)
    edge = frame[y1:y2, x1 - 1].astype(int)  # the left side of the box, drawn just outside it
    assert np.abs(edge - np.array(BOX_COLOUR)).max(axis=1).mean() < 60
    plain = _jpeg_image(client.get("/api/hits/2/image", params={"box": "false"}))
    assert np.abs(plain[y1:y2, x1 - 1].astype(int) - np.array(BOX_COLOUR)).max(axis=1).mean() > 60
    thumb = _jpeg_image(client.get("/api/hits/2/thumbnail"))
    assert thumb.shape[0] == 160 and thumb.shape[1] < thumb.shape[0]
    left, right = COLOURS[2]
    middle = thumb.shape[0] // 2
    assert np.abs(thumb[middle, thumb.shape[1] // 4].astype(int) - left).max() < 40
    assert np.abs(thumb[middle, 3 * thumb.shape[1] // 4].astype(int) - right).max() < 40


@pytest.mark.parametrize("path, status", [("/api/hits/999/image", 404), ("/api/hits/999/thumbnail", 404),
                                          ("/api/hits/abc/image", 422), ("/api/hits/-1/image", 422),
                                          ("/api/hits/%2B0.0/thumbnail", 422), ("/api/hits/1e0/image", 422),
                                          ("/api/hits/2.0/people", 422), ("/api/hits/+1/similar", 422),
                                          ("/api/hits/..%2F..%2Fetc%2Fpasswd/image", 404),
                                          ("/api/hits/0/../../../etc/passwd", 404)])
def test_hits_are_served_by_integer_id_only(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    if status == 404 and "999" in path:
        assert "no person with id 999" in response.json()["detail"]


def test_search_by_an_indexed_person_uses_its_stored_embedding(client):
    searcher = client.app.state.service.searcher
    calls = searcher.calls
    response = client.get("/api/hits/3/similar", params={"top_k": "3"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert searcher.calls == calls  # nothing detected or embedded again
    assert (result["person_id"], result["box_source"], result["width"], result["height"]) == (3, "indexed", 160, 120)
    assert result["box"] == pytest.approx(person_box(160, 120).tolist()) and result["det_score"] == pytest.approx(0.9)
    hits = result["hits"]
    assert len(hits) == 3 and hits[0]["id"] == 3 and hits[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    uploaded = client.post("/api/query", files={"image": _png(COLOURS[3])}, data={"top_k": "3"}).json()["hits"]
    assert [h["id"] for h in hits] == [h["id"] for h in uploaded]  # the same ranking as its image's
    reranked = client.get("/api/hits/3/similar", params={"top_k": "3", "rerank": "true"}).json()["hits"]
    assert reranked[0]["id"] == 3 and all(h["rerank_distance"] is not None for h in reranked)


def test_the_people_of_a_hit_s_frame(client):
    response = client.get("/api/hits/2/people")
    assert response.status_code == 200, response.text
    frame = response.json()
    assert (frame["source"], frame["frame"], frame["width"], frame["height"]) == ("scene2.png", None, 160, 120)
    assert frame["image_url"] == "/api/hits/2/image?box=false"
    assert [p["id"] for p in frame["people"]] == [2]  # one person per fake scene
    assert frame["people"][0]["box"] == pytest.approx(person_box(160, 120).tolist())
    assert frame["people"][0]["thumbnail_url"] == "/api/hits/2/thumbnail"


@pytest.mark.parametrize("path", ["/api/hits/999/similar", "/api/hits/999/people", "/api/hits/999/image"])
def test_an_unknown_person_id_is_a_404_naming_it(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["detail"] == "person_id: no person with id 999 in the index"


def test_form_values_are_what_the_document_says(client):
    """Booleans are true or false, numbers are not left empty, the box follows its pattern."""
    for data in ({"rerank": "1"}, {"rerank": "yes"}, {"top_k": ""}, {"rerank": ""}, {"top_k": "2.5"},
                 {"top_k": "3.0"}, {"top_k": "+3"}, {"top_k": " 3"}, {"box": "1 2 30 40"}, {"box": "1e1,2,30,40"}):
        response = client.post("/api/query", files={"image": _png()}, data=data)
        assert response.status_code == 422, (data, response.text)
        assert response.json()["detail"].startswith(f"{next(iter(data))}:"), response.json()
    assert client.get("/api/hits/1/image", params={"box": "0"}).status_code == 422
    assert client.get("/api/hits/1/similar", params={"top_k": "2.0"}).status_code == 422
    for path in ("/api/query", "/api/detect", "/api/images"):  # the form bodies are closed
        field = "images" if path == "/api/images" else "image"
        response = client.post(path, files={field: _png()}, data={"topk": "3"})
        assert response.status_code == 422 and response.json()["detail"].startswith("'topk': not a field")
    for data in ({"box": ""}, {"box": "  "}, {"box": " 48, 12 ,112 , 108 "}, {"rerank": "false"}):
        assert client.post("/api/query", files={"image": _png()}, data=data).status_code == 200, data


def test_stats(client):
    stats = client.get("/api/stats").json()
    assert stats["model"] == "fake" and stats["dim"] == DIM and stats["max_upload_bytes"] == LIMIT
    assert stats["index"]["people"] == len(COLOURS) and stats["index"]["images"] == len(COLOURS)
    assert stats["adding"] is False


@pytest.mark.parametrize("box, words", [("1,2,3", "3 numbers"), ("a,b,c,d", "not four numbers"),
                                        ("50,50,40,90", "zero area"), ("500,500,600,600", "outside the 160x120"),
                                        ("nan,1,20,30", "not finite"), ("1,2,3,4,5", "5 numbers")])
def test_a_bad_box_is_a_422_naming_the_field(client, box, words):
    response = client.post("/api/query", files={"image": _png()}, data={"box": box})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("box") and words in detail


def test_bad_form_fields_are_422s_naming_them(client):
    response = client.post("/api/query", files={"image": _png()}, data={"top_k": "0"})
    assert response.status_code == 422 and response.json()["detail"].startswith("top_k:")
    response = client.post("/api/query", data={"top_k": "3"})
    assert response.status_code == 422 and response.json()["detail"].startswith("image:")


@pytest.mark.parametrize("upload, words", [(("notes.txt", b"hello", "text/plain"), "not an image"),
                                           (("fake.png", b"hello, not a png", "image/png"), "could not be decoded"),
                                           (("empty.jpg", b"", "image/jpeg"), "empty"),
                                           (("doc.pdf", b"%PDF-1.4", "application/pdf"), "not an image")])
def test_non_images_are_415s(client, upload, words):
    for path in ("/api/query", "/api/detect"):
        response = client.post(path, files={"image": upload})
        assert response.status_code == 415
        assert words in response.json()["detail"] and upload[0] in response.json()["detail"]


def test_an_image_without_a_content_type_is_accepted(client):
    response = client.post("/api/detect", files={"image": ("q.png", encode(scene(*COLOURS[0])), "application/octet-stream")})
    assert response.status_code == 200


def test_oversized_uploads_are_413s_by_header_and_while_reading(client):
    big = ("big.png", b"\x89PNG" + bytes(LIMIT), "image/png")
    response = client.post("/api/query", files={"image": big})
    assert response.status_code == 413 and "upload limit" in response.json()["detail"]
    # chunked: no Content-Length to go by, the bytes are counted as they arrive
    boundary = "limitboundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()
    chunks = iter([head] + [bytes(50_000)] * 8 + [f"\r\n--{boundary}--\r\n".encode()])
    response = client.post("/api/images", content=chunks,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413 and "upload limit" in response.json()["detail"]


def test_the_body_limit_stops_reading_at_the_limit():
    import asyncio

    sent, answered = [], []

    async def app(scope, receive, send):  # reads everything, then answers 200
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        sent.append(1)
        return {"type": "http.request", "body": bytes(1000), "more_body": len(sent) < 100}

    async def send(message):
        answered.append(message)

    scope = {"type": "http", "method": "POST", "headers": [(b"transfer-encoding", b"chunked")]}
    asyncio.run(BodyLimitMiddleware(app, max_bytes=5_500)(scope, receive, send))
    assert len(sent) == 6  # 6,000 bytes read: over the limit, nothing more
    assert answered[0]["status"] == 413 and b"upload limit" in answered[1]["body"]


def test_adding_images_then_finding_them(fresh):
    new = [("new1.png", encode(scene((10, 250, 10), (250, 10, 250))), "image/png"),
           ("new2.jpg", encode(scene((250, 130, 0), (0, 0, 120)), "JPEG"), "image/jpeg")]
    response = fresh.post("/api/images", files=[("images", f) for f in new], data={"camera": "door"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["images"], report["people"], report["already"], report["skipped"]) == (2, 2, 0, [])
    stats = fresh.get("/api/stats").json()["index"]
    assert stats["people"] == len(COLOURS) + 2 and stats["cameras"] == ["door"]
    hit = fresh.post("/api/query", files={"image": new[0]}, data={"top_k": "1"}).json()["hits"][0]
    assert hit["camera"] == "door" and hit["similarity"] > 0.99 and hit["id"] >= len(COLOURS)
    assert _jpeg_image(fresh.get(hit["thumbnail_url"])).shape[0] == 160
    again = fresh.post("/api/images", files=[("images", new[0])]).json()
    assert (again["images"], again["already"]) == (0, 1)


def test_adding_a_non_image_refuses_the_whole_request(fresh):
    files = [("images", _png(((1, 250, 1), (5, 5, 250)))), ("images", ("readme.txt", b"text", "text/plain"))]
    response = fresh.post("/api/images", files=files)
    assert response.status_code == 415 and "readme.txt" in response.json()["detail"]
    assert fresh.get("/api/stats").json()["index"]["people"] == len(COLOURS)


def test_queries_keep_working_while_images_are_added(fresh):
    """Two adds (slow fake detector) run in threads; queries from this thread are answered meanwhile."""
    rng = np.random.default_rng(0)
    batches = [[("images", (f"b{b}_{i}.png", encode(scene(*rng.integers(0, 255, (2, 3)).tolist())), "image/png"))
                for i in range(12)] for b in range(2)]
    results: list = []

    def add(files):
        results.append(fresh.post("/api/images", files=files))

    threads = [threading.Thread(target=add, args=(files,)) for files in batches]
    for thread in threads:
        thread.start()
    box = ",".join(f"{v:g}" for v in person_box(160, 120))
    answered, saw_adding, started = 0, False, time.monotonic()
    while any(t.is_alive() for t in threads) and time.monotonic() - started < 30:
        t0 = time.monotonic()
        response = fresh.post("/api/query", files={"image": _png(COLOURS[4])}, data={"box": box, "top_k": "1"})
        assert response.status_code == 200 and response.json()["hits"][0]["id"] == 4
        assert time.monotonic() - t0 < 2.0  # not held up by the adds
        answered += 1
        saw_adding |= fresh.get("/api/stats").json()["adding"]
    for thread in threads:
        thread.join(timeout=30)
    assert answered >= 3 and saw_adding
    assert [r.status_code for r in results] == [200, 200]
    assert sorted(r.json()["people"] for r in results) == [12, 12]
    assert fresh.get("/api/stats").json()["index"]["people"] == len(COLOURS) + 24


def test_exif_rotated_uploads_are_decoded_as_browsers_show_them():
    from personsearch.serve.uploads import decode_image, probe_image

    image = Image.fromarray(scene(*COLOURS[0], size=(160, 120)))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    upload = decode_image(probe_image(buffer.getvalue(), "image/jpeg", "phone.jpg"))
    assert upload.rgb.shape == (160, 120, 3)
    assert upload.suffix == ".png"  # stored upright, as the gallery readers see it
    assert Image.open(io.BytesIO(upload.data)).size == (120, 160)


def test_serve_cli_defaults_to_this_machine_only():
    from personsearch.cli import build_parser

    args = build_parser().parse_args(["serve", "--index", "somewhere"])
    assert (args.host, args.port, args.max_upload_mb) == ("127.0.0.1", 8000, 20.0)
