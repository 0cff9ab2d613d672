"""The JSON bodies of the REST API, as pydantic models (they document the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Tuple

from pydantic import BaseModel, Field

Box = Tuple[float, float, float, float]


class ErrorOut(BaseModel):
    """Every error: a human-readable message (422s also list the offending fields)."""

    detail: str = Field(description="what went wrong and how to fix it")
    errors: Optional[list[dict[str, Any]]] = Field(None, description="per-field validation errors (422 only)")


class PersonOut(BaseModel):
    """A person detected in an uploaded image."""

    box: Box = Field(description="[x1, y1, x2, y2] in pixels of the uploaded image")
    score: float = Field(description="detector confidence")


class DetectOut(BaseModel):
    """The people found in an uploaded image, most confident first."""

    width: int
    height: int
    people: list[PersonOut]


class HitOut(BaseModel):
    """One indexed person, ranked by similarity to the query."""

    id: int = Field(description="person id in the index (use it with /api/hits/{id}/...)")
    source: str = Field(description="name of the image or video file the person was found in (no folder)")
    frame: Optional[int] = Field(None, description="video frame number (None for still images)")
    timestamp: Optional[float] = Field(None, description="seconds into the video (None for still images)")
    box: Box = Field(description="[x1, y1, x2, y2] in pixels of the source image or frame")
    det_score: float = Field(description="detector confidence")
    similarity: float = Field(description="similarity to the query (higher is more alike)")
    rerank_distance: Optional[float] = Field(None, description="re-ranked distance when rerank was asked "
                                                                "(smaller is better; hits are then ordered by it)")
    camera: Optional[str] = None
    image_url: str = Field(description="the whole image or frame with the box drawn (JPEG)")
    thumbnail_url: str = Field(description="the person crop (small JPEG)")


class SightingOut(BaseModel):
    """Hits of one video grouped into a passage: consecutive hits at most 3 s apart."""

    source: str = Field(description="name of the video file (no folder)")
    camera: Optional[str] = None
    start: float = Field(description="seconds into the video of the first hit")
    end: float = Field(description="seconds into the video of the last hit")
    similarity: float = Field(description="the best similarity among its hits")
    best_id: int = Field(description="person id of its most similar hit")
    hit_ids: list[int] = Field(description="person ids of its hits, best first")


class QueryOut(BaseModel):
    """Search results for one query person: one in an uploaded image, or one already indexed."""

    box: Box = Field(description="the query box that was used, in pixels of the query image (or of the indexed "
                                 "person's image or frame)")
    box_source: Literal["given", "detected", "indexed"] = Field(
        description="'given' if the request named the box, 'detected' if the most confident detection was used, "
                    "'indexed' for a query by the id of an indexed person (its stored embedding)")
    det_score: Optional[float] = Field(None, description="detector confidence of the query box when detected "
                                                         "or indexed")
    person_id: Optional[int] = Field(None, description="the indexed person queried by id (None for an upload)")
    width: int = Field(description="width of the query image (or of the indexed person's image or frame)")
    height: int = Field(description="height of the query image (or of the indexed person's image or frame)")
    hits: list[HitOut]
    sightings: list[SightingOut] = Field(description="the hits of videos grouped into passages (which video, "
                                                     "from when to when), best first; still images are left out")
    took_ms: float


class FramePersonOut(BaseModel):
    """A person indexed in an image or video frame."""

    id: int = Field(description="person id in the index (query by it with /api/hits/{id}/similar)")
    box: Box = Field(description="[x1, y1, x2, y2] in pixels of the image or frame")
    det_score: float = Field(description="detector confidence")
    thumbnail_url: str = Field(description="the person crop (small JPEG)")


class FrameOut(BaseModel):
    """The image or video frame holding an indexed person, and every person indexed in it."""

    source: str = Field(description="name of the image or video file (no folder)")
    frame: Optional[int] = Field(None, description="video frame number (None for still images)")
    timestamp: Optional[float] = Field(None, description="seconds into the video (None for still images)")
    camera: Optional[str] = None
    width: int = Field(description="width of the image or frame in pixels (the boxes' frame)")
    height: int = Field(description="height of the image or frame in pixels")
    image_url: str = Field(description="the image or frame without boxes drawn (JPEG; may be scaled down: "
                                       "place boxes by width and height)")
    people: list[FramePersonOut] = Field(description="every person indexed in it, by id, the asked one included")


class SkippedOut(BaseModel):
    """An uploaded file the index did not take, and why."""

    file: str
    reason: str


class AddOut(BaseModel):
    """What adding uploaded images to the index did."""

    images: int = Field(description="images added")
    people: int = Field(description="people detected in them and indexed")
    already: int = Field(0, description="images that were already in the index")
    skipped: list[SkippedOut]
    took_ms: float


class StatsOut(BaseModel):
    """Index statistics and server settings."""

    model: str
    dim: int
    index: dict[str, Any] = Field(description="statistics reported by the index (people, images, sources, ...)")
    max_upload_bytes: int
    max_image_pixels: int = Field(description="largest image accepted, in pixels (width x height)")
    pixel_budget: int = Field(description="pixels the server decodes at once, over all requests")
    adding: bool = Field(description="True while images are being added")


class AdaptSettingsOut(BaseModel):
    """The settings an adaptation runs with (``personsearch adapt`` options)."""

    steps: int
    lr: float
    max_crops: int
    merge: float
    seed: int


class AdaptReportOut(BaseModel):
    """What a finished adaptation did."""

    tracklets: int = Field(description="people followed over consecutive indexed frames (the training signal)")
    identities: int = Field(description="pseudo-identities trained on (tracklets, or merged ones with merge > 0)")
    crops: int = Field(description="person crops trained on")
    steps: int = Field(description="training steps run")
    first_loss: float = Field(description="triplet loss of the first step")
    last_loss: float = Field(description="mean triplet loss of the last 10 steps")
    people: int = Field(description="indexed people embedded again with the tuned model")
    seconds: float
    model: str = Field(description="the index's model now (its tuned weights live inside the index)")


class AdaptOut(BaseModel):
    """The server's adaptation of its index to its own footage: state and progress."""

    state: Literal["idle", "running", "done", "failed", "stopped"] = Field(
        description="'idle' until one is started; 'stopped' on request (starting again with the same settings "
                    "resumes it)")
    stage: Optional[Literal["starting", "crops", "training", "re-embedding"]] = Field(
        None, description="while running: reading the tracklets' crops, training, or embedding the index again")
    done: int = Field(description="units of the stage done (frames read, steps trained, people embedded)")
    total: int = Field(description="units of the stage in all")
    started: Optional[float] = Field(None, description="start time, seconds since 1970")
    finished: Optional[float] = Field(None, description="end time, seconds since 1970")
    settings: Optional[AdaptSettingsOut] = None
    report: Optional[AdaptReportOut] = Field(None, description="what it did, once done")
    error: Optional[str] = Field(None, description="why it failed or stopped")
