"""What the gallery index returns: hits, add reports, and its own error types."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class IndexHit:
    """One indexed person: where it was seen and, for search results, how similar it is to the query.

    ``frame`` and ``timestamp`` (seconds) are None for still images; ``similarity`` is the inner
    product with the query (NaN for plain look-ups); ``rerank_distance`` is set when the results were
    k-reciprocally re-ranked (smaller is better; the list is then ordered by it).
    """

    person_id: int
    source: str
    frame: int | None
    timestamp: float | None
    box: tuple[float, float, float, float]
    det_score: float
    similarity: float
    camera: str | None
    rerank_distance: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict: the box as a list, a NaN similarity (plain look-up) as None."""
        out = asdict(self)
        out["box"] = list(self.box)
        if math.isnan(self.similarity):
            out["similarity"] = None
        return out


@dataclass(frozen=True)
class IndexFrame:
    """The image or video frame holding an indexed person: its size in pixels and every person
    indexed in it (by id, that person included; ``similarity`` NaN)."""

    width: int
    height: int
    people: list[IndexHit]


@dataclass
class AddReport:
    """What one ``add_images`` / ``add_video`` call did.

    ``images``: images or video frames newly indexed; ``people``: people added; ``skipped``:
    (file, reason) for unreadable inputs; ``already``: images or frames found already indexed.
    """

    images: int = 0
    people: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0


class IndexCorruptError(ValueError):
    """The index folder exists but cannot be read (its message names the file)."""


class EmptyIndexError(ValueError):
    """A search on an index that holds no person yet."""


class DimensionError(ValueError):
    """An embedding whose size differs from the index's (the wrong model for this index)."""


class IndexWriteError(OSError):
    """The index could not be written (disk full, read-only folder, ...): nothing of the batch was
    kept; what was committed before stays, and rerunning the same command continues from there."""
