"""The REST endpoints: thin wrappers that check input and call the SearchService."""

from __future__ import annotations

import time
from typing import Annotated, Optional

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from .schemas import AddOut, DetectOut, ErrorOut, QueryOut, StatsOut
from .service import SearchService
from .uploads import ApiError, UploadedImage, decode_image, gallery_upload, parse_box, probe_image

MAX_TOP_K = 200
MAX_FILES = 64  # images in one POST /api/images
MAX_ID = 2**63 - 1  # SQLite's largest integer

router = APIRouter(prefix="/api")


def _errors(*codes: int) -> dict:
    text = {404: "unknown person id", 409: "another process is writing the index",
            413: "upload over the size or pixel limit", 415: "not an image",
            422: "invalid field (the message names it), or no person found in the query image",
            503: "the server is busy decoding other images: try again shortly",
            507: "the index could not be written (disk full?)"}
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}


def _service(request: Request) -> SearchService:
    return request.app.state.service


def _probe(request: Request, upload: UploadFile, field: str) -> UploadedImage:
    """The upload's bytes and declared size, checked from its header (nothing decoded yet)."""
    service = _service(request)
    return probe_image(upload.file.read(), upload.content_type, upload.filename or "", field,
                       service.max_image_pixels)


ImageFile = Annotated[UploadFile, File(description="a JPEG, PNG or BMP image")]
PersonId = Annotated[int, Path(ge=0, le=MAX_ID, description="person id from a hit")]
JPEG = {200: {"content": {"image/jpeg": {}}, "description": "JPEG image"}}


@router.post("/query", tags=["search"], response_model=QueryOut, responses=_errors(413, 415, 422, 503),
             summary="Search the index for the person in a query image")
def query(request: Request, image: ImageFile,
          box: Annotated[Optional[str], Form(description="query box 'x1,y1,x2,y2' in pixels; "
                                                          "leave out to use the most confident detection")] = None,
          top_k: Annotated[int, Form(ge=1, le=MAX_TOP_K, description="number of hits")] = 10,
          rerank: Annotated[bool, Form(description="re-rank the hits (slower, often better)")] = False) -> dict:
    """Rank the indexed people by similarity to the person in ``box`` of ``image``.

    Without a box the people in the image are detected and the most confident one is used; the
    answer says which box was used (``box_source``). No person found: 422.
    """
    start = time.perf_counter()
    service = _service(request)
    probe = _probe(request, image, "image")
    with service.budget.reserve(probe.pixels, "image"):
        upload = decode_image(probe, "image")
        height, width = upload.rgb.shape[:2]  # as shown (EXIF orientation applied): the box's frame
        query_box = parse_box(box, width, height)
        result = service.query(upload.rgb, query_box, top_k, rerank, root=request.scope.get("root_path", ""))
        del upload
    return {**result, "width": width, "height": height, "took_ms": 1000 * (time.perf_counter() - start)}


@router.post("/detect", tags=["search"], response_model=DetectOut, responses=_errors(413, 415, 422, 503),
             summary="Find the people in an image (to propose query boxes)")
def detect(request: Request, image: ImageFile) -> dict:
    """Boxes and scores of the people detected in ``image``, most confident first."""
    service = _service(request)
    probe = _probe(request, image, "image")
    with service.budget.reserve(probe.pixels, "image"):
        upload = decode_image(probe, "image")
        height, width = upload.rgb.shape[:2]
        people = service.detect(upload.rgb)
        del upload
    return {"width": width, "height": height, "people": people}


@router.get("/hits/{person_id}/image", tags=["hits"], response_class=Response, responses={**JPEG, **_errors(404)},
            summary="The image or video frame of an indexed person, box drawn")
def hit_image(request: Request, person_id: PersonId,
              box: Annotated[bool, Query(description="draw the person's box")] = True) -> Response:
    """The whole image or frame holding person ``person_id`` as JPEG, with the box outlined unless ``box=false``."""
    return Response(_service(request).frame_jpeg(person_id, draw_box=box), media_type="image/jpeg")


@router.get("/hits/{person_id}/thumbnail", tags=["hits"], response_class=Response, responses={**JPEG, **_errors(404)},
            summary="A small crop of an indexed person")
def hit_thumbnail(request: Request, person_id: PersonId) -> Response:
    """The crop around person ``person_id``, 160 px tall, as JPEG."""
    return Response(_service(request).thumbnail_jpeg(person_id), media_type="image/jpeg")


@router.get("/stats", tags=["index"], response_model=StatsOut, summary="Index statistics")
def stats(request: Request) -> dict:
    """What the index holds, the model it was built with and the server's upload limit."""
    return _service(request).stats()


@router.post("/images", tags=["index"], response_model=AddOut, responses=_errors(409, 413, 415, 422, 503, 507),
             summary="Add images to the index")
def add_images(request: Request, images: Annotated[list[UploadFile], File(description="one or more images")],
               camera: Annotated[Optional[str], Form(description="camera name stored with the people found")] = None
               ) -> dict:
    """Detect the people in the uploaded images and add them to the index.

    One add runs at a time (others wait); queries keep being answered meanwhile. Any file that is
    not an image, or is too large, refuses the whole request (415, 413) before anything is added;
    the images are decoded one at a time.
    """
    start = time.perf_counter()
    service = _service(request)
    if len(images) > MAX_FILES:
        raise ApiError(413, f"images: {len(images)} files in one request; send at most {MAX_FILES}")
    probes = [_probe(request, upload, "images") for upload in images]
    uploads = []
    for probe in probes:  # decoded one at a time to check them and store them upright; pixels dropped
        with service.budget.reserve(probe.pixels, "images"):
            uploads.append(gallery_upload(probe, "images"))
    report = service.add(uploads, camera or None)
    return {**report, "took_ms": 1000 * (time.perf_counter() - start)}
