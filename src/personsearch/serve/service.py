"""What the server does with the index and the searcher, independent of HTTP: one object, thread-safe."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..index import EmptyIndexError, IndexFrame, IndexHit, PersonIndex, query_person
from ..index.frames import source_key
from ..index.sightings import group_sightings
from ..pipelines import Searcher
from .adaptation import AdaptationJob, AdaptSettings, without_folders
from .budget import PixelBudget
from .render import frame_with_box, person_crop
from .uploads import MAX_IMAGE_PIXELS, ApiError, UploadedImage, store_upload


def public_name(path: str) -> str:
    """How a file is named to clients: its name only (absolute paths of the server stay private)."""
    return Path(path).name


def scrub(text: str, paths) -> str:
    """``text`` with every one of ``paths`` replaced by its file name."""
    for path in sorted({str(p) for p in paths}, key=len, reverse=True):
        text = text.replace(path, public_name(path))
    return text


class _JpegCache:
    """A small thread-safe LRU of rendered JPEGs (hit images are immutable: ids are never reused)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class SearchService:
    """Queries, detections, hit images and additions over one open ``PersonIndex``.

    Additions are serialised by the index (``adding`` says when one runs); queries are answered
    meanwhile. Uploaded gallery images are stored under ``upload_dir`` by content hash. Decoding
    and searching hold the images' pixels in ``budget`` (one per server). Clients see file names,
    never the server's absolute paths.
    """

    def __init__(self, index: PersonIndex, searcher: Searcher, upload_dir: Path, max_upload_bytes: int,
                 cache_size: int = 512, budget: PixelBudget | None = None,
                 max_image_pixels: int = MAX_IMAGE_PIXELS, own_searcher: bool = False) -> None:
        self.index = index
        self.searcher = searcher
        self._model = index.model  # a new model (``personsearch adapt``) reloads an own searcher
        self._own_searcher = own_searcher
        self.upload_dir = Path(upload_dir)
        self.max_upload_bytes = max_upload_bytes
        self.budget = budget or PixelBudget()
        self.max_image_pixels = max_image_pixels
        self._refreshed = time.monotonic()
        self._adding = 0
        self._adding_lock = threading.Lock()
        self._jpegs = _JpegCache(cache_size)
        self.adaptation = AdaptationJob(index.path, self._invalidate)

    # -- people in uploaded images ------------------------------------------------------------
    def _searcher_call(self, call, field: str = "image"):
        """``call()``, a ValueError (input the searcher refuses) becoming a 422 naming ``field``."""
        try:
            return call()
        except ValueError as err:
            raise ApiError(422, f"{field}: {err}") from None

    def detect(self, rgb: np.ndarray) -> list[dict[str, Any]]:
        """The people the searcher finds in ``rgb``, most confident first: [{"box", "score"}]."""
        out = self._searcher_call(lambda: self.searcher(rgb))
        order = np.argsort(-np.asarray(out["scores"], np.float64), kind="stable")
        return [{"box": tuple(float(v) for v in out["boxes"][i]), "score": float(out["scores"][i])} for i in order]

    def query(self, rgb: np.ndarray, box: np.ndarray | None, top_k: int, rerank: bool, root: str = "") -> dict:
        """Hits for the person in ``box`` of ``rgb`` (the most confident detection if ``box`` is None)."""
        self._refresh()  # before embedding: the index may have a new model since the last query
        person = self._searcher_call(lambda: query_person(self.searcher, rgb, None if box is None else box[None]))
        if box is None and person.detected == 0:
            raise ApiError(422, "no person was found in the query image: draw a box around the person "
                                "(form field 'box' = x1,y1,x2,y2)")
        return {"box": person.box, "box_source": "given" if box is not None else "detected",
                "det_score": person.det_score, "person_id": None,
                **self._search(person.embedding, top_k, rerank, root)}

    def query_by_id(self, person_id: int, top_k: int, rerank: bool, root: str = "") -> dict:
        """Hits for the indexed person ``person_id``, searched with their stored embedding (nothing is
        decoded or embedded again); the person comes first. ApiError 404 naming ``person_id`` if unknown."""
        frame, person = self._frame(person_id)
        try:
            embedding = self.index.embedding(person_id)
        except KeyError:
            raise self._unknown(person_id) from None
        return {"box": person.box, "box_source": "indexed", "det_score": person.det_score, "person_id": person_id,
                "width": frame.width, "height": frame.height, **self._search(embedding, top_k, rerank, root)}

    def _search(self, embedding: np.ndarray, top_k: int, rerank: bool, root: str) -> dict[str, list[dict]]:
        """``{"hits": [...], "sightings": [...]}`` (sightings: the hits of videos grouped by passage)."""
        self._refresh()
        try:
            hits = self.index.search(embedding, top_k=top_k, rerank=rerank)
        except EmptyIndexError:
            hits = []
        sightings = [{"source": public_name(s.source), "camera": s.camera, "start": s.start, "end": s.end,
                      "similarity": s.best.similarity, "best_id": s.best.person_id,
                      "hit_ids": [h.person_id for h in s.hits]}
                     for s in group_sightings(hits) if s.start is not None]
        return {"hits": [self.hit_json(h, root) for h in hits], "sightings": sightings}

    def _invalidate(self) -> None:
        """Make the next request re-read the index (an adaptation has just swapped its embeddings)."""
        self._refreshed = float("-inf")

    def _refresh(self) -> None:
        """Pick up people another process (``personsearch index add``) committed, at most once a second."""
        now = time.monotonic()
        if now - self._refreshed > 1.0:
            self._refreshed = now
            self.index.refresh()
            if self.index.model != self._model:  # re-embedded with another model: queries must follow
                if self._own_searcher:
                    self.searcher = self.index.load_searcher()
                self._model = self.index.model

    @staticmethod
    def hit_json(hit: IndexHit, root: str = "") -> dict:
        """A hit as the API returns it, with the URLs of its images."""
        base = f"{root}/api/hits/{hit.person_id}"
        return {"id": hit.person_id, "source": public_name(hit.source), "frame": hit.frame, "timestamp": hit.timestamp,
                "box": tuple(hit.box), "det_score": hit.det_score, "similarity": hit.similarity,
                "rerank_distance": hit.rerank_distance, "camera": hit.camera,
                "image_url": f"{base}/image", "thumbnail_url": f"{base}/thumbnail"}

    # -- indexed people -----------------------------------------------------------------------
    @staticmethod
    def _unknown(person_id: int) -> ApiError:
        return ApiError(404, f"person_id: no person with id {person_id} in the index")

    def hit(self, person_id: int) -> IndexHit:
        """The indexed person ``person_id``; ApiError 404 naming ``person_id`` if there is none."""
        try:
            return self.index.hit(person_id)
        except KeyError:
            raise self._unknown(person_id) from None

    def _frame(self, person_id: int) -> tuple[IndexFrame, IndexHit]:
        """(the frame holding ``person_id``, that person); ApiError 404 naming ``person_id`` if unknown."""
        try:
            frame = self.index.frame(person_id)
        except KeyError:
            raise self._unknown(person_id) from None
        return frame, next(p for p in frame.people if p.person_id == person_id)

    def frame_json(self, person_id: int, root: str = "") -> dict:
        """The image or frame holding ``person_id`` and every person indexed in it, as the API returns it."""
        frame, person = self._frame(person_id)
        people = [{"id": p.person_id, "box": tuple(p.box), "det_score": p.det_score,
                   "thumbnail_url": f"{root}/api/hits/{p.person_id}/thumbnail"} for p in frame.people]
        return {"source": public_name(person.source), "frame": person.frame, "timestamp": person.timestamp,
                "camera": person.camera, "width": frame.width, "height": frame.height,
                "image_url": f"{root}/api/hits/{person_id}/image?box=false", "people": people}

    def _render(self, kind: str, person_id: int, draw) -> bytes:
        key = (kind, person_id)
        cached = self._jpegs.get(key)
        if cached is None:
            hit = self.hit(person_id)
            try:
                frame = self.index.frame_image(person_id)
            except (FileNotFoundError, ValueError) as err:
                raise ApiError(404, f"person_id: the image of person {person_id} cannot be read any more: "
                                    f"{scrub(str(err), [hit.source])}") from None
            cached = draw(frame, hit.box)
            self._jpegs.put(key, cached)
        return cached

    def frame_jpeg(self, person_id: int, draw_box: bool = True) -> bytes:
        """JPEG of the image or frame holding ``person_id`` (box outlined if ``draw_box``)."""
        if draw_box:
            return self._render("frame", person_id, frame_with_box)
        return self._render("plain", person_id, lambda frame, _: frame_with_box(frame))

    def thumbnail_jpeg(self, person_id: int) -> bytes:
        """Small JPEG crop of ``person_id``."""
        return self._render("thumb", person_id, person_crop)

    def stats(self) -> dict:
        """Index statistics plus the model, dimension and upload limit."""
        self._refresh()
        stats = self.index.stats()
        stats.pop("path", None)
        skipped = stats.pop("skipped_files", [])
        stats["skipped_files"] = [[public_name(path), scrub(reason, [path])] for path, reason in skipped]
        model = str(self.index.model)
        return {"model": public_name(model) if Path(model).is_absolute() else model, "dim": int(self.index.dim),
                "index": stats, "max_upload_bytes": self.max_upload_bytes,
                "max_image_pixels": self.max_image_pixels, "pixel_budget": self.budget.total,
                "adding": self._adding > 0}

    # -- adaptation ---------------------------------------------------------------------------
    def _check_adaptable(self) -> None:
        """ApiError 409 if adaptation cannot run on this index (wrong model, no video)."""
        from ..index.adapt import check_adaptable

        try:
            check_adaptable(self.index)
        except ValueError as err:
            raise ApiError(409, without_folders(str(err))) from None
        if not self.index.stats().get("videos"):
            raise ApiError(409, "the index holds no video: adaptation learns from people followed over "
                                "consecutive frames (index a video first)")

    def start_adaptation(self, settings: AdaptSettings) -> dict:
        """Start ``personsearch adapt`` on the index in the background; its status (ApiError 409 if it
        cannot run or one runs already)."""
        return self.adaptation.start(settings, self._check_adaptable)

    # -- additions ----------------------------------------------------------------------------
    def add(self, uploads: list[UploadedImage], camera: str | None = None) -> dict:
        """Store the uploads and index the people in them (the index runs one add at a time).

        The images are decoded one at a time while indexed, holding the largest one's pixels in the
        budget. Files this call stored are removed again if the add is refused (409).
        """
        if self.adaptation.running:
            raise ApiError(409, "the index is being adapted (GET /api/adapt shows its progress): add the images "
                                "when it has finished")
        stored = [store_upload(upload, self.upload_dir) for upload in uploads]
        paths = [path for path, _ in stored]
        names = {source_key(path): upload.name or path.name for path, upload in zip(paths, uploads)}
        with self._adding_lock:
            self._adding += 1
        try:
            with self.budget.reserve(max((u.pixels for u in uploads), default=0), "images"):
                report = self.index.add_images(self.searcher, paths, camera=camera, progress=False)
        except (ValueError, OSError) as err:  # another process is writing the index; a full disk
            for path, created in stored:
                if created:
                    path.unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise ApiError(507, "the index could not be written: "
                                    f"{scrub(str(err), [self.index.path, self.upload_dir])}") from None
            raise ApiError(409, f"the images could not be added: {scrub(str(err), [self.index.path])}") from None
        finally:
            with self._adding_lock:
                self._adding -= 1
        skipped = [{"file": names.get(path, public_name(path)), "reason": scrub(reason, [path, self.upload_dir])}
                   for path, reason in report.skipped]
        return {"images": report.images, "people": report.people, "already": report.already, "skipped": skipped}
