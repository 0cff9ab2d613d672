"""A ranked-list HTML report: per chosen query, its top-k gallery images with green/red borders."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..utils.files import atomic_write_text

THUMB = (64, 128)  # width, height


def _thumb_uri(path: Path) -> str:
    with Image.open(path) as img:
        img = img.convert("RGB").resize(THUMB)
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def ranked_list_html(distmat: np.ndarray, query_paths: Sequence[Path], gallery_paths: Sequence[Path],
                     q_pids, g_pids, q_camids, g_camids, out: str | Path, queries: Sequence[int] | None = None,
                     top_k: int = 10, title: str = "Ranked lists") -> Path:
    """Write a self-contained HTML page (thumbnails inlined). Same-pid same-camera items are skipped,
    as the Market protocol removes them; green border = correct identity, red = wrong."""
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    if queries is None:
        queries = np.linspace(0, len(query_paths) - 1, num=min(10, len(query_paths))).astype(int).tolist()
    rows = []
    for qi in queries:
        order = np.argsort(distmat[qi])
        keep = ~((g_pids[order] == q_pids[qi]) & (g_camids[order] == q_camids[qi]))
        cells = [f'<td class="q"><img src="{_thumb_uri(Path(query_paths[qi]))}"><br>query {qi}<br>'
                 f'pid {q_pids[qi]} c{q_camids[qi] + 1}</td>']
        for rank, gi in enumerate(order[keep][:top_k], start=1):
            ok = g_pids[gi] == q_pids[qi]
            cells.append(f'<td class="{"hit" if ok else "miss"}"><img src="{_thumb_uri(Path(gallery_paths[gi]))}">'
                         f'<br>#{rank} {distmat[qi, gi]:.3f}<br>pid {g_pids[gi]} c{g_camids[gi] + 1}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} td{{text-align:center;font-size:11px;padding:3px}}
td img{{border:4px solid #ccc}} td.hit img{{border-color:#1a9e3a}} td.miss img{{border-color:#d62b2b}}
td.q img{{border-color:#333}}</style></head><body><h2>{html.escape(title)}</h2>
<p>Each row: a query, then its top-{top_k} gallery matches (same identity and camera removed).
Green = correct identity, red = wrong.</p><table>{''.join(rows)}</table></body></html>"""
    out = Path(out)
    atomic_write_text(out, page)
    return out
