"""ReID ranking metrics under the Market-1501 protocol (torchreid / fast-reid semantics, exactly).

No row is argsorted in the common case. The metrics only need the ranks of a query's positives
among its kept gallery items, and the rank of a positive is

    1 + #(kept items with a smaller distance) + #(kept items tied with it that np.argsort puts first).

Per row, only the distances up to the row's largest same-pid distance can matter: they are sorted
by value (``np.sort``, several times cheaper than ``np.argsort``; when they are few, as with a
trained model, only they are sorted) and each same-pid item's distance is located among them with
``searchsorted`` (< and <=). Everything strictly below a positive, minus the same-pid items strictly
below it, is the number of kept negatives (other pids) before it; the positives then follow each
other in distance order. Ties among positives, or with removed items, cannot change the multiset
of ranks, so they need nothing more.

Ties that matter: when a kept negative has exactly the distance of a positive, the rank depends on
the order in which ``np.argsort`` (default kind, not stable) puts the tied items. Such rows are
detected (more distances equal to the positive's than same-pid items) and recomputed from
``np.argsort`` of the row, exactly as the reference loop does; every other row is exact by
construction. Chunks of rows go to threads (numpy releases the GIL while sorting); nothing Q x G
is allocated.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .checks import as_array, require_finite, require_length

CHUNK_ELEMENTS = 1_000_000  # distances per chunk of query rows (a thread's unit; bounds the argsort redo)


@dataclass
class ReidResult:
    """CMC curve (float64, length max_rank), mAP and mINP (fractions in [0, 1])."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int

    def as_dict(self, ranks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
        """``{"rank1": .., "rank5": .., "rank10": .., "mAP": .., "mINP": ..}``, as fractions."""
        out = {f"rank{r}": float(self.cmc[r - 1]) for r in ranks if r <= len(self.cmc)}
        return {**out, "mAP": self.mAP, "mINP": self.mINP}


@dataclass
class _RowStats:
    """Per query row: AP, 1-based kept rank of the first and last positive, number of positives."""

    ap: np.ndarray
    first: np.ndarray
    last: np.ndarray
    num_pos: np.ndarray

    @classmethod
    def from_ranks(cls, rows: np.ndarray, ranks: np.ndarray, num_rows: int) -> _RowStats:
        """From the positives' (row, kept rank), sorted by row then rank."""
        row_start = np.searchsorted(rows, rows)
        hits = np.arange(1, len(rows) + 1) - row_start  # 1-based index among the row's positives
        num_pos = np.bincount(rows, minlength=num_rows)
        ap = np.bincount(rows, weights=hits / ranks, minlength=num_rows) / np.maximum(num_pos, 1)
        first, last = np.zeros(num_rows, np.int64), np.zeros(num_rows, np.int64)
        first[rows[hits == 1]] = ranks[hits == 1]
        is_last = np.r_[rows[1:] != rows[:-1], True][:len(rows)]
        last[rows[is_last]] = ranks[is_last]
        return cls(ap, first, last, num_pos)

    def put(self, rows: np.ndarray, other: _RowStats) -> None:
        """Overwrite ``rows`` with ``other``'s values (one per row, in the same order)."""
        self.ap[rows], self.first[rows], self.last[rows], self.num_pos[rows] = (
            other.ap, other.first, other.last, other.num_pos)


def _same_pid_items(q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray,
                    g_camids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query row, gallery column) pair with equal pids, rows ascending; and which are removed."""
    by_pid = np.argsort(g_pids, kind="stable")
    pids_sorted = g_pids[by_pid]
    lo = np.searchsorted(pids_sorted, q_pids, "left")
    counts = np.searchsorted(pids_sorted, q_pids, "right") - lo
    rows = np.repeat(np.arange(len(q_pids)), counts)
    cols = by_pid[np.arange(len(rows)) + np.repeat(lo - (np.cumsum(counts) - counts), counts)]
    return rows, cols, g_camids[cols] == q_camids[rows]


def _argsort_stats(dist: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray,
                   g_camids: np.ndarray) -> _RowStats:
    """Rows ranked with np.argsort, as the reference loop does (for rows with a relevant tie)."""
    order = np.argsort(dist, axis=1)
    rows, where = np.nonzero(g_pids[order] == q_pids[:, None])  # sorted positions of same-pid items
    removed = g_camids[order[rows, where]] == q_camids[rows]
    removed_upto = np.cumsum(removed)
    removed_upto -= np.r_[0, removed_upto][np.searchsorted(rows, rows)]  # per row, inclusive
    ranks = where + 1 - removed_upto  # among kept items
    return _RowStats.from_ranks(rows[~removed], ranks[~removed], len(dist))


def _locate(dist: np.ndarray, rows: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per item (``rows`` ascending): how many distances of its row are < and <= its value ``vals``;
    and whether all distances are finite (if not, the counts are left undone)."""
    floating = dist.dtype.kind == "f"
    after = np.nextafter(vals, np.inf) if floating else vals  # x < after  <=>  x <= value
    below, upto = np.empty(len(vals), np.int64), np.empty(len(vals), np.int64)
    bounds = np.searchsorted(rows, np.arange(len(dist) + 1))
    busy = np.flatnonzero(bounds[1:] > bounds[:-1])
    if floating and not np.isfinite(dist[bounds[1:] == bounds[:-1]]).all():
        return below, upto, False
    tops = np.maximum.reduceat(vals, bounds[busy]) if len(busy) else vals[:0]
    for r, top in zip(busy.tolist(), tops):
        row, a, b = dist[r], bounds[r], bounds[r + 1]
        mask = row <= top  # only these distances can be below an item of the row
        if np.count_nonzero(mask) * 4 < len(row):  # few (positives near the top): sort only those
            if floating and not np.isfinite(row.max()):
                return below, upto, False
            ordered = np.compress(mask, row)
            ordered.sort()
        else:
            ordered = np.sort(row)
        if floating and not (np.isfinite(ordered[0]) and np.isfinite(ordered[-1])):  # NaN sorts last
            return below, upto, False
        below[a:b] = ordered.searchsorted(vals[a:b], "left")
        upto[a:b] = ordered.searchsorted(after[a:b], "left" if floating else "right")
    return below, upto, True


def _chunk_stats(dist: np.ndarray, rows: np.ndarray, cols: np.ndarray, removed: np.ndarray,
                 q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray,
                 g_camids: np.ndarray) -> tuple[_RowStats, bool]:
    """Per-row stats of a chunk of query rows and whether its distances are all finite.

    ``rows`` (ascending, chunk-local), ``cols``, ``removed``: the chunk's same-pid items.
    """
    useful = np.isin(rows, rows[~removed])  # items of rows that have a positive
    rows, vals, removed = rows[useful], dist[rows[useful], cols[useful]], removed[useful]
    o = np.lexsort((vals, rows))  # by row, then distance
    rows, vals, removed = rows[o], vals[o], removed[o]
    below, upto, finite = _locate(dist, rows, vals)
    if not finite:
        return _RowStats.from_ranks(rows[:0], rows[:0], len(dist)), False
    # how many same-pid items lie strictly below each item, how many share its distance
    idx = np.arange(len(rows))
    row_start = np.searchsorted(rows, rows)
    new_val = np.r_[True, (rows[1:] != rows[:-1]) | (vals[1:] != vals[:-1])][:len(rows)]
    same_below = np.maximum.accumulate(np.where(new_val, idx, 0)) - row_start
    group = np.cumsum(new_val) - 1
    pos = ~removed
    cum_pos = np.r_[0, np.cumsum(pos)]
    hits = cum_pos[idx + 1] - cum_pos[row_start]  # 1-based index among the row's positives
    ranks = below - same_below + hits  # kept negatives (other pids) strictly below + positives so far
    stats = _RowStats.from_ranks(rows[pos], ranks[pos], len(dist))
    tied = pos & (upto - below > np.bincount(group)[group])  # a kept negative has exactly this distance
    if tied.any():
        redo = np.unique(rows[tied])
        stats.put(redo, _argsort_stats(dist[redo], q_pids[redo], q_camids[redo], g_pids, g_camids))
    return stats, True


def evaluate_reid(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
                  threads: int | None = None) -> ReidResult:
    """Market-1501 protocol: CMC, mAP, mINP from a (Q, G) distance matrix (smaller = closer).

    Gallery items with the query's pid and camera are removed per query; queries left without a
    positive are excluded from every average; ``max_rank`` is capped at G. Ties are ordered as
    ``np.argsort`` orders them. Raises ValueError on empty, mismatched or non-finite input, or when
    no query is valid. ``threads`` (default: CPU count) work on chunks of query rows.
    """
    dist = as_array(distmat, "distmat", 2)
    q_pids, g_pids = as_array(q_pids, "q_pids", 1), as_array(g_pids, "g_pids", 1)
    q_camids, g_camids = as_array(q_camids, "q_camids", 1), as_array(g_camids, "g_camids", 1)
    num_q, num_g = dist.shape
    if num_q == 0 or num_g == 0:
        raise ValueError(f"distmat is empty (shape {dist.shape}): need at least one query and one gallery item")
    require_length(q_pids, num_q, "q_pids", "distmat rows")
    require_length(q_camids, num_q, "q_camids", "distmat rows")
    require_length(g_pids, num_g, "g_pids", "distmat columns")
    require_length(g_camids, num_g, "g_camids", "distmat columns")
    if max_rank < 1:
        require_finite(dist, "distmat")  # the finiteness check takes precedence, as it always did
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    max_rank = min(max_rank, num_g)
    rows, cols, removed = _same_pid_items(q_pids, q_camids, g_pids, g_camids)
    step = max(1, CHUNK_ELEMENTS // num_g)
    starts = list(range(0, num_q, step))
    cuts = np.searchsorted(rows, starts + [num_q])

    def work(k: int) -> tuple[_RowStats, bool]:
        s, items = slice(starts[k], starts[k] + step), slice(cuts[k], cuts[k + 1])
        return _chunk_stats(dist[s], rows[items] - starts[k], cols[items], removed[items], q_pids[s],
                            q_camids[s], g_pids, g_camids)

    threads = max(1, min(len(starts), threads or os.cpu_count() or 1))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(work, range(len(starts))))
    else:
        parts = [work(k) for k in range(len(starts))]
    if not all(finite for _, finite in parts):
        require_finite(dist, "distmat")  # raises, naming the first bad position
        raise AssertionError("a non-finite distance was seen but not found again")
    num_pos = np.concatenate([p.num_pos for p, _ in parts])
    valid = num_pos > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError("no valid query: every query lacks a gallery positive from another camera")
    first = np.concatenate([p.first for p, _ in parts])[valid]
    last = np.concatenate([p.last for p, _ in parts])[valid]
    ap = np.concatenate([p.ap for p, _ in parts])[valid]
    cmc = np.cumsum(np.bincount(np.minimum(first, max_rank + 1) - 1, minlength=max_rank + 1)[:max_rank])
    return ReidResult(cmc=cmc / num_valid, mAP=float(np.mean(ap)), mINP=float(np.mean(num_pos[valid] / last)),
                      num_valid_queries=num_valid)
