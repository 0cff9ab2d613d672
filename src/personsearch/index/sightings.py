"""Sightings: a query's hits grouped into "seen on camera X from t1 to t2", and their timeline.

A person walking past a camera is indexed once per sampled frame; users want the passages, not fifty
near-identical frames. Hits of one source (video or camera) are linked when they are close in time
and in place (see ``group_sightings``); each group is one sighting, represented by its best hit.
Still images (no timestamp) are one sighting each.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .records import IndexHit

TIMELINE_WIDTH = 720
ROW_HEIGHT = 22


@dataclass(frozen=True)
class Sighting:
    """A passage of the person in front of one source: ``start``/``end`` in seconds (None for a still
    image), its hits best first, and the best similarity among them."""

    source: str
    camera: str | None
    start: float | None
    end: float | None
    hits: tuple[IndexHit, ...]

    @property
    def best(self) -> IndexHit:
        """The most similar hit of the sighting."""
        return self.hits[0]

    def to_dict(self) -> dict:
        """JSON-ready: where and when, how many hits, the best hit."""
        return {"source": self.source, "camera": self.camera, "start": self.start, "end": self.end,
                "hits": len(self.hits), "similarity": self.best.to_dict()["similarity"],
                "best": self.best.to_dict()}


def _rank_key(hit: IndexHit) -> float:
    return hit.rerank_distance if hit.rerank_distance is not None else -hit.similarity


def _near(hit: IndexHit, members: list[IndexHit], max_gap: float, speed: float) -> bool:
    """Could ``hit`` be the same passage as ``members``: another frame, within ``max_gap`` s of the
    nearest member, and its box centre within (1 + speed * dt) box heights of that member's."""
    nearest = min(members, key=lambda m: abs(m.timestamp - hit.timestamp))
    dt = abs(nearest.timestamp - hit.timestamp)
    if dt > max_gap or any(m.frame == hit.frame and m.timestamp == hit.timestamp for m in members):
        return False
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = hit.box, nearest.box
    height = max(ay2 - ay1, by2 - by1, 1e-6)
    dist = ((ax1 + ax2 - bx1 - bx2) ** 2 + (ay1 + ay2 - by1 - by2) ** 2) ** 0.5 / 2
    return dist <= (1.0 + speed * dt) * height


def group_sightings(hits: Sequence[IndexHit], max_gap: float = 3.0, speed: float = 1.0) -> list[Sighting]:
    """Sightings of ``hits``, best first.

    Hits are taken in ranking order (by re-ranked distance when the hits were re-ranked, else by
    similarity); each joins the first sighting of its source that it fits (another frame, at most
    ``max_gap`` s from the sighting's nearest hit, box centre within ``1 + speed * dt`` box heights of
    that hit's: people walk up to about one body height per second) or starts a new one. So a sighting is one
    passage of one person, seeded by its best hit; other people seen at the same time stay apart.
    """
    if not max_gap >= 0 or not speed >= 0:
        raise ValueError(f"max_gap and speed must be >= 0, got {max_gap} and {speed}")
    groups: list[list[IndexHit]] = []
    for hit in sorted(hits, key=_rank_key):
        home = None
        if hit.timestamp is not None:
            home = next((g for g in groups if g[0].timestamp is not None and g[0].source == hit.source
                         and _near(hit, g, max_gap, speed)), None)
        if home is None:
            groups.append([hit])
        else:
            home.append(hit)
    return [Sighting(g[0].source, g[0].camera, None if g[0].timestamp is None else min(h.timestamp for h in g),
                     None if g[0].timestamp is None else max(h.timestamp for h in g), tuple(g)) for g in groups]


def _clock(seconds: float) -> str:
    minutes, sec = divmod(seconds, 60)
    return f"{int(minutes)}:{sec:04.1f}"


def timeline_svg(sightings: Sequence[Sighting]) -> str:
    """An inline SVG: one row per source, a bar per sighting from start to end, shaded by similarity."""
    timed = [s for s in sightings if s.start is not None]
    if not timed:
        return ""
    sources = list(dict.fromkeys(s.source for s in timed))
    t0 = min(s.start for s in timed)
    t1 = max(s.end for s in timed)
    span = max(t1 - t0, 1e-6)
    label_w, pad = 160, 4
    scale = (TIMELINE_WIDTH - label_w - 2 * pad) / span
    best = max(s.best.similarity for s in timed)
    worst = min(s.best.similarity for s in timed)
    parts = []
    for row, source in enumerate(sources):
        y = row * ROW_HEIGHT + pad
        name = Path(source).name
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{html.escape(name[:24])}</text>')
        for s in (s for s in timed if s.source == source):
            x = label_w + (s.start - t0) * scale
            w = max(3.0, (s.end - s.start) * scale)
            strength = 1.0 if best == worst else (s.best.similarity - worst) / (best - worst)
            tip = (f"{name}{' camera ' + s.camera if s.camera else ''}: {_clock(s.start)}-{_clock(s.end)}, "
                   f"{len(s.hits)} hits, best similarity {s.best.similarity:.3f}")
            parts.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW_HEIGHT - 6}" rx="3" '
                         f'fill="rgb(30,{int(90 + 80 * strength)},60)" fill-opacity="{0.35 + 0.65 * strength:.2f}">'
                         f"<title>{html.escape(tip)}</title></rect>")
    height = len(sources) * ROW_HEIGHT + 2 * pad + 16
    axis_y = len(sources) * ROW_HEIGHT + pad + 12
    parts.append(f'<text x="{label_w}" y="{axis_y}" font-size="11">{_clock(t0)}</text>')
    parts.append(f'<text x="{TIMELINE_WIDTH - pad}" y="{axis_y}" font-size="11" text-anchor="end">{_clock(t1)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{TIMELINE_WIDTH}" height="{height}" '
            f'class="timeline">{"".join(parts)}</svg>')


__all__ = ["Sighting", "group_sightings", "timeline_svg"]
