"""The REST endpoints: thin wrappers that check input and call the SearchService."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from .contract import (ALWAYS, BOX_FIELD, BOX_HELP, DECIMAL_INT, IMAGE_HELP, IMAGE_PART, MAX_CAMERA_CHARS, UPLOAD,
                       WireBool, errors, image_encoding)
from .adaptation import AdaptSettings
from .schemas import AddOut, AdaptOut, DetectOut, FrameOut, QueryOut, StatsOut
from .service import SearchService
from .uploads import ApiError, UploadedImage, decode_image, gallery_upload, parse_box, probe_image

MAX_TOP_K = 200
MAX_FILES = 64  # images in one POST /api/images
MAX_ID = 2**63 - 1  # SQLite's largest integer
MAX_ADAPT_STEPS, MAX_ADAPT_CROPS = 5000, 50_000
DEFAULT = AdaptSettings()  # the defaults of `personsearch adapt`

router = APIRouter(prefix="/api", responses=errors(*ALWAYS))


def _service(request: Request) -> SearchService:
    return request.app.state.service


def _probe(request: Request, upload: UploadFile, field: str) -> UploadedImage:
    """The upload's bytes and declared size, checked from its header (nothing decoded yet)."""
    service = _service(request)
    return probe_image(upload.file.read(), upload.content_type, upload.filename or "", field,
                       service.max_image_pixels)


def checked_form(*not_blank: str):
    """A dependency refusing (422 naming the field) form fields the route does not declare (the
    document closes its form bodies), and the ``not_blank`` fields sent empty: FastAPI would take an
    empty value as the field left out, but the document declares them numbers or booleans."""

    async def check(request: Request) -> None:
        form = await request.form()  # parsed once per request: the route reads the same form
        known = {param.alias for param in request.scope["route"].dependant.body_params}
        for field in form.keys():
            if field not in known:
                raise ApiError(422, f"{field!r}: not a field of this request (it takes {', '.join(sorted(known))})")
        for field in not_blank:
            if "" in form.getlist(field):
                raise ApiError(422, f"{field}: empty; give a value or leave the field out")

    return Depends(check)


ImageFile = Annotated[UploadFile, File(description=IMAGE_HELP, json_schema_extra=IMAGE_PART)]
PersonId = Annotated[int, Path(ge=0, le=MAX_ID, description="person id from a hit"), DECIMAL_INT]
TopK = Query(ge=1, le=MAX_TOP_K, description="number of hits")
Rerank = Query(description="re-rank the hits (slower, often better)")
JPEG = {200: {"content": {"image/jpeg": {}}, "description": "JPEG image"}}


@router.post("/query", tags=["search"], response_model=QueryOut, responses=errors(*UPLOAD),
             openapi_extra=image_encoding("image"), dependencies=[checked_form("top_k", "rerank")],
             summary="Search the index for the person in a query image")
def query(request: Request, image: ImageFile,
          box: Annotated[str, Form(description=BOX_HELP, json_schema_extra=BOX_FIELD)] = "",
          top_k: Annotated[int, Form(ge=1, le=MAX_TOP_K, description="number of hits"), DECIMAL_INT] = 10,
          rerank: Annotated[WireBool, Form(description="re-rank the hits (slower, often better)")] = False) -> dict:
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


@router.post("/detect", tags=["search"], response_model=DetectOut, responses=errors(*UPLOAD),
             openapi_extra=image_encoding("image"), dependencies=[checked_form()],
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


@router.get("/hits/{person_id}/image", tags=["hits"], response_class=Response,
            responses={**JPEG, **errors(404, 422)},
            summary="The image or video frame of an indexed person, box drawn")
def hit_image(request: Request, person_id: PersonId,
              box: Annotated[WireBool, Query(description="draw the person's box")] = True) -> Response:
    """The whole image or frame holding person ``person_id`` as JPEG, with the box outlined unless ``box=false``."""
    return Response(_service(request).frame_jpeg(person_id, draw_box=box), media_type="image/jpeg")


@router.get("/hits/{person_id}/thumbnail", tags=["hits"], response_class=Response,
            responses={**JPEG, **errors(404, 422)},
            summary="A small crop of an indexed person")
def hit_thumbnail(request: Request, person_id: PersonId) -> Response:
    """The crop around person ``person_id``, 160 px tall, as JPEG."""
    return Response(_service(request).thumbnail_jpeg(person_id), media_type="image/jpeg")


@router.get("/stats", tags=["index"], response_model=StatsOut, summary="Index statistics")
def stats(request: Request) -> dict:
    """What the index holds, the model it was built with and the server's upload limit."""
    return _service(request).stats()


@router.post("/images", tags=["index"], response_model=AddOut, responses=errors(*UPLOAD, 409, 507),
             openapi_extra=image_encoding("images"), dependencies=[checked_form()],
             summary="Add images to the index")
def add_images(request: Request,
               images: Annotated[list[UploadFile], File(min_length=1, max_length=MAX_FILES,
                                                        description=f"1 to {MAX_FILES} images; each {IMAGE_HELP}",
                                                        json_schema_extra={"items": {"type": "string", **IMAGE_PART}})],
               camera: Annotated[str, Form(max_length=MAX_CAMERA_CHARS,
                                           description="camera name stored with the people found")] = "") -> dict:
    """Detect the people in the uploaded images and add them to the index.

    One add runs at a time (others wait); queries keep being answered meanwhile. Any file that is
    not an image, or is too large, refuses the whole request (415, 413) before anything is added;
    the images are decoded one at a time.
    """
    start = time.perf_counter()
    service = _service(request)
    probes = [_probe(request, upload, "images") for upload in images]
    uploads = []
    for probe in probes:  # decoded one at a time to check them and store them upright; pixels dropped
        with service.budget.reserve(probe.pixels, "images"):
            uploads.append(gallery_upload(probe, "images"))
    report = service.add(uploads, camera or None)
    return {**report, "took_ms": 1000 * (time.perf_counter() - start)}


@router.get("/hits/{person_id}/similar", tags=["hits"], response_model=QueryOut, responses=errors(404, 422),
            summary="Search the index for an indexed person (follow them across cameras)")
def similar(request: Request, person_id: PersonId, top_k: Annotated[int, TopK, DECIMAL_INT] = 10,
            rerank: Annotated[WireBool, Rerank] = False) -> dict:
    """Rank the indexed people by similarity to person ``person_id``, using the embedding stored
    when it was indexed (no image is decoded or embedded). The person itself comes first."""
    start = time.perf_counter()
    result = _service(request).query_by_id(person_id, top_k, rerank, root=request.scope.get("root_path", ""))
    return {**result, "took_ms": 1000 * (time.perf_counter() - start)}


@router.get("/hits/{person_id}/people", tags=["hits"], response_model=FrameOut, responses=errors(404, 422),
            summary="The people indexed in the image or frame of an indexed person")
def frame_people(request: Request, person_id: PersonId) -> dict:
    """The image or video frame holding person ``person_id`` (its size and plain image URL) and every
    person indexed in it, by id: click one to search for them next."""
    return _service(request).frame_json(person_id, root=request.scope.get("root_path", ""))


@router.get("/adapt", tags=["index"], response_model=AdaptOut, summary="Progress of the index's adaptation")
def adapt_status(request: Request) -> dict:
    """State and progress of adapting the index to its own footage (idle until one is started)."""
    return _service(request).adaptation.status()


@router.post("/adapt", tags=["index"], response_model=AdaptOut, status_code=202,
             responses=errors(403, 408, 409, 413, 422),
             dependencies=[checked_form("steps", "lr", "max_crops", "merge", "seed")],
             summary="Adapt the index to its own footage (no labels), in the background")
def adapt_start(request: Request,
                steps: Annotated[int, Form(ge=1, le=MAX_ADAPT_STEPS, description="training steps of 8 tracklets "
                                                                             "x 4 crops"), DECIMAL_INT] = DEFAULT.steps,
                lr: Annotated[float, Form(gt=0, le=1, description="Adam learning rate")] = DEFAULT.lr,
                max_crops: Annotated[int, Form(ge=2, le=MAX_ADAPT_CROPS,
                                               description="train on at most this many crops, sampled"),
                                     DECIMAL_INT] = DEFAULT.max_crops,
                merge: Annotated[float, Form(ge=0, lt=2, description="train on pseudo-identities: tracklets whose "
                                             "mean embeddings are within this cosine distance are one person; "
                                             "0: tracklets")] = DEFAULT.merge,
                seed: Annotated[int, Form(ge=0, le=2**31 - 1), DECIMAL_INT] = DEFAULT.seed) -> dict:
    """Start ``personsearch adapt`` on the index: people followed over consecutive video frames tune
    the pretrained embedder, then every indexed person is embedded again and swapped in at once.
    Queries are answered meanwhile (with the old model until the swap); adding images waits for the
    end (409). Follow it with ``GET /api/adapt``. 409 if the index was not built with the pretrained
    model from video, or an adaptation runs already."""
    return _service(request).start_adaptation(AdaptSettings(steps, lr, max_crops, merge, seed))


@router.delete("/adapt", tags=["index"], response_model=AdaptOut, status_code=202, responses=errors(403, 409),
               summary="Stop the running adaptation")
def adapt_stop(request: Request) -> dict:
    """Ask the running adaptation to stop at its next step; the index keeps its model. Starting
    again with the same settings resumes the training where it stopped. 409 if none runs."""
    return _service(request).adaptation.stop()
