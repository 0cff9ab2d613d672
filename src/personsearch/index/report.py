"""A self-contained HTML page of one query's hits: each hit's frame with its box drawn, and its crop."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..utils.files import atomic_write_text
from .records import IndexHit
from .sightings import group_sightings, timeline_svg

FRAME_WIDTH = 360
CROP_SIZE = (64, 128)
COLOURS = {"query": (40, 110, 230), "hit": (30, 170, 60)}


def _jpeg_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _framed(rgb: np.ndarray, box: Sequence[float], colour: tuple[int, int, int]) -> tuple[str, str]:
    """(frame thumbnail with the box drawn, crop of the box) as data URIs."""
    image = Image.fromarray(rgb)
    crop = image.crop(tuple(int(round(v)) for v in box)).resize(CROP_SIZE)
    drawn = image.copy()
    ImageDraw.Draw(drawn).rectangle(list(box), outline=colour, width=max(2, image.width // 200))
    drawn.thumbnail((FRAME_WIDTH, FRAME_WIDTH * 4))
    return _jpeg_uri(drawn), _jpeg_uri(crop)


def _where(hit: IndexHit) -> str:
    parts = [html.escape(Path(hit.source).name)]
    if hit.frame is not None:
        parts.append(f"frame {hit.frame}")
    if hit.timestamp is not None:
        parts.append(f"t = {hit.timestamp:.2f} s")
    if hit.camera:
        parts.append(f"camera {html.escape(hit.camera)}")
    return "<br>".join(parts)


def _sightings_html(hits: Sequence[IndexHit]) -> str:
    """Timeline and table of the hits grouped into sightings (videos only; empty for still images)."""
    sightings = [s for s in group_sightings(hits) if s.start is not None]
    if not sightings:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(Path(s.source).name)}</td><td>{html.escape(s.camera or '')}</td>"
        f"<td>{s.start:.1f} s</td><td>{s.end:.1f} s</td><td>{len(s.hits)}</td><td>{s.best.similarity:.4f}</td></tr>"
        for s in sightings)
    return (f"<h3>{len(sightings)} sightings</h3>{timeline_svg(sightings)}"
            "<table><tr><th>source</th><th>camera</th><th>from</th><th>to</th><th>hits</th><th>best similarity</th>"
            f"</tr>{rows}</table>")


def query_report_html(out: str | Path, query_rgb: np.ndarray, query_box: Sequence[float], query_note: str,
                      hits: Sequence[IndexHit], load_frame: Callable[[IndexHit], np.ndarray],
                      title: str = "Person search") -> Path:
    """Write the report to ``out`` (atomically): the query, then one row per hit, best first.

    ``load_frame(hit)`` gives the RGB frame holding a hit; frames that cannot be loaded any more
    (file moved) are listed without images.
    """
    frame_uri, crop_uri = _framed(query_rgb, query_box, COLOURS["query"])
    rows = []
    cache: dict[tuple[str, int | None], np.ndarray | str] = {}
    for rank, hit in enumerate(hits, start=1):
        key = (hit.source, hit.frame)
        if key not in cache:
            try:
                cache[key] = load_frame(hit)
            except (OSError, ValueError) as err:
                cache[key] = str(err)
        frame = cache[key]
        if isinstance(frame, str):
            images = f'<td colspan="2" class="missing">{html.escape(frame)}</td>'
        else:
            hit_frame, hit_crop = _framed(frame, hit.box, COLOURS["hit"])
            images = f'<td><img src="{hit_crop}"></td><td><img src="{hit_frame}"></td>'
        rerank = "" if hit.rerank_distance is None else f"<br>re-ranked distance {hit.rerank_distance:.4f}"
        box = ", ".join(f"{v:.0f}" for v in hit.box)
        rows.append(f"<tr><td>#{rank}</td>{images}<td>similarity <b>{hit.similarity:.4f}</b>{rerank}<br>"
                    f"person {hit.person_id}<br>detection {hit.det_score:.2f}<br>box [{box}]</td>"
                    f'<td title="{html.escape(hit.source)}">{_where(hit)}</td></tr>')
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:16px}} td{{padding:4px 8px;vertical-align:top;font-size:13px}}
tr:nth-child(even){{background:#f4f4f4}} img{{display:block}} .missing{{color:#b00}}</style></head><body>
<h2>{html.escape(title)}</h2>
<table><tr><td><img src="{crop_uri}"></td><td><img src="{frame_uri}"></td>
<td>query: {html.escape(query_note)}<br>box [{", ".join(f"{v:.0f}" for v in query_box)}]</td></tr></table>
{_sightings_html(hits)}
<h3>{len(hits)} hits, best first</h3>
<table>{"".join(rows)}</table></body></html>"""
    out = Path(out)
    atomic_write_text(out, page)
    return out
