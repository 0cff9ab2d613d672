"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) without dense N x N work.

Same semantics as the reference (torchreid ``utils/rerank.py``, the authors' person-re-ranking repo;
see docs/protocols.md): the N x N matrix S = [[q_q, q_g], [q_g^T, g_g]] is squared elementwise, cast
to float32, each column divided by its max and transposed, so row i of the normalised matrix is
column i of S over its max. Here that matrix is never built: S is read column block by column block
from the three inputs, each block is squared, normalised by its column maxima found in the same pass,
and only the top-K neighbours of every row are kept (``torch.topk``); ``re_ranking_features`` computes
S block by block from the features instead (upper triangle only, S being symmetric there). Everything else runs on those (N, K) lists and sparse matrices (``rerank_sparse``).

Ties: the reference ranks with numpy's full ``argsort``, whose order among exactly equal distances is
an implementation detail; ``torch.topk`` may order them differently. Results agree (to ~1e-6) whenever
no exact tie straddles one of the prefixes used (the top k1 + 1, round(k1 / 2) + 1 and k2
neighbours), e.g. for continuous distances; within a prefix the order of tied items does not matter.

Memory beyond the inputs and the (Q, G) float32 output: fixed-size chunk buffers, the (N, K) lists
and the sparse encodings (typically 20-60 non-zeros per row): ~150 MB at N = 20,000 and ~250 MB at
MSMT17 size (N = 93,820) as measured by benchmarks/rerank.py; the output itself is 3.7 GB there.
"""

from __future__ import annotations

import numpy as np
import torch

from ..distance.pairwise import block_distance, check_metric, paired_distance, row_terms
from .checks import as_array, feature_pair
from .rerank_sparse import encode, jaccard_blend, query_expand

BLOCK_ELEMENTS = 8_000_000  # elements of S handled per column block (~32 MB float32 buffer)
FEATURE_CHUNK = 2048  # re_ranking_features: side of the square distance blocks (16 MB each)
PAIR_BATCH = 4096  # feature rows gathered at once to recompute distances outside the top-K lists

__all__ = ["re_ranking", "re_ranking_features"]


# ----------------------------------------------------------------------------- validation helpers
def _require_finite_rows(arr: np.ndarray, name: str, step: int = 1 << 20) -> None:
    """Like checks.require_finite but in row chunks, so no full-size boolean temporary."""
    if arr.dtype.kind not in "fc":
        return
    rows = max(1, step // max(1, int(np.prod(arr.shape[1:]))))
    for start in range(0, len(arr), rows):
        part = arr[start:start + rows]
        if not np.isfinite(part).all():
            bad = np.argwhere(~np.isfinite(part))[0]
            bad[0] += start
            raise ValueError(f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})")


def _check_params(k1, k2, lambda_value) -> float:
    for name, value in (("k1", k1), ("k2", k2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    try:
        lam = float(lambda_value)
    except (TypeError, ValueError):
        raise ValueError(f"lambda_value must be a number in [0, 1], got {lambda_value!r}") from None
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    return lam


def _bad_column_max(colmax: np.ndarray, first_col: int, blocks) -> None:
    """Raise the right ValueError when a column of S has a non-finite or zero maximum."""
    if not np.isfinite(colmax).all():
        for arr, name in blocks:
            _require_finite_rows(arr, name)
        col = first_col + int(np.flatnonzero(~np.isfinite(colmax))[0])
        raise ValueError(f"distances too large: squaring them overflows float32 (row {col} of the stacked matrix)")
    col = first_col + int(np.flatnonzero(colmax <= 0)[0])
    raise ValueError(f"all distances of item {col} (queries first, then gallery) are zero: the reference "
                     "normalisation divides by that maximum, so re-ranking is undefined")


# ----------------------------------------------------------------------------- distance matrices
def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6,
               lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked (Q, G) float32 distances from the q-g, q-q and g-g distance matrices.

    Semantics of the dense reference (torchreid ``re_ranking``), computed in O(N * K) memory beyond
    the inputs and the output. numpy arrays or CPU torch tensors; raises ValueError (naming the
    argument) on mismatched shapes, empty query or gallery, NaN/inf, k1 or k2 < 1, lambda outside
    [0, 1], or an item whose distances are all zero (the reference would divide by zero).
    """
    lam = _check_params(k1, k2, lambda_value)
    qg = as_array(q_g_dist, "q_g_dist", 2)
    qq = as_array(q_q_dist, "q_q_dist", 2)
    gg = as_array(g_g_dist, "g_g_dist", 2)
    num_q, num_g = qg.shape
    if num_q == 0 or num_g == 0:
        raise ValueError(f"q_g_dist is empty (shape {qg.shape}): need at least one query and one gallery item")
    if qq.shape != (num_q, num_q):
        raise ValueError(f"q_q_dist must have shape {(num_q, num_q)} to match q_g_dist {qg.shape}, got {qq.shape}")
    if gg.shape != (num_g, num_g):
        raise ValueError(f"g_g_dist must have shape {(num_g, num_g)} to match q_g_dist {qg.shape}, got {gg.shape}")
    work = np.result_type(qg, qq, gg)
    if work.kind != "f":
        work = np.dtype(np.float64)
    n = num_q + num_g
    top = min(max(k1 + 1, k2), n)
    ranks = np.empty((n, top), dtype=np.int32)
    values = np.empty((n, top), dtype=np.float32)
    colmax = np.empty(n, dtype=np.float32)
    out = np.empty((num_q, num_g), dtype=np.float32)
    step = max(1, BLOCK_ELEMENTS // n)
    raw_flat = np.empty(n * step, dtype=work)
    f32_flat = raw_flat if work == np.float32 else np.empty(n * step, dtype=np.float32)
    blocks = ((qg, "q_g_dist"), (qq, "q_q_dist"), (gg, "g_g_dist"))
    spans = [(s, min(s + step, num_q)) for s in range(0, num_q, step)]
    spans += [(s, min(s + step, n)) for s in range(num_q, n, step)]
    for lo, hi in spans:  # columns lo:hi of S, never straddling the query/gallery boundary
        width = hi - lo
        raw = raw_flat[: n * width].reshape(n, width)
        if hi <= num_q:
            raw[:num_q] = qq[:, lo:hi]
            raw[num_q:] = qg[lo:hi, :].T
        else:
            raw[:num_q] = qg[:, lo - num_q:hi - num_q]
            raw[num_q:] = gg[:, lo - num_q:hi - num_q]
        block = f32_flat[: n * width].reshape(n, width)
        with np.errstate(over="ignore"):  # overflow shows up as an inf maximum, reported below
            np.square(raw, out=raw)
            if block is not raw:
                np.copyto(block, raw, casting="unsafe")
        cmax = block.max(axis=0)
        if not (np.isfinite(cmax).all() and (cmax > 0).all()):
            _bad_column_max(cmax, lo, blocks)
        colmax[lo:hi] = cmax
        block /= cmax
        val, idx = torch.topk(torch.from_numpy(block), top, dim=0, largest=False, sorted=True)
        ranks[lo:hi] = idx.numpy().T
        values[lo:hi] = val.numpy().T
        if hi <= num_q:
            out[lo:hi] = block[num_q:].T

    def pair_values(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Normalised entry (row, col) = S[col, row] / colmax[row], gathered from the blocks."""
        raw = np.empty(len(rows), dtype=work)
        rq, cq = rows < num_q, cols < num_q
        for mask, arr, a, b in ((rq & cq, qq, cols, rows), (rq & ~cq, qg, rows, cols - num_q),
                                (~rq & cq, qg, cols, rows - num_q), (~rq & ~cq, gg, cols - num_q, rows - num_q)):
            raw[mask] = arr[a[mask], b[mask]]
        return np.square(raw).astype(np.float32) / colmax[rows]

    return _finish(ranks, values, pair_values, num_q, out, k1, k2, lam)


def _finish(ranks, values, pair_values, num_q, out, k1, k2, lam):
    V = encode(ranks, values, pair_values, k1)
    if k2 != 1:
        V = query_expand(V, ranks, k2)
    return jaccard_blend(V, num_q, out, lam)


# ----------------------------------------------------------------------------- features
class _Features:
    """Query and gallery features (float32 torch, not concatenated) with the kernel's per-row terms."""

    def __init__(self, q: np.ndarray, g: np.ndarray, metric: str):
        self.q, self.g = torch.from_numpy(q), torch.from_numpy(g)
        self.num_q, self.metric = len(q), metric
        self.qa, self.ga = row_terms(self.q, metric), row_terms(self.g, metric)

    def span(self, lo: int, hi: int):
        """(features, terms) of rows lo:hi, which lie on one side of the query/gallery boundary: views."""
        if hi <= self.num_q:
            return self.q[lo:hi], self.qa[lo:hi]
        return self.g[lo - self.num_q:hi - self.num_q], self.ga[lo - self.num_q:hi - self.num_q]

    def rows(self, idx: np.ndarray):
        """(features, terms) of the rows ``idx`` (queries first, then gallery), as new tensors."""
        idx = torch.from_numpy(np.asarray(idx, dtype=np.int64))
        is_q = idx < self.num_q
        feats = torch.empty((len(idx), self.q.shape[1]), dtype=torch.float32)
        terms = torch.empty(len(idx), dtype=torch.float32)
        for mask, src, src_terms, shift in ((is_q, self.q, self.qa, 0), (~is_q, self.g, self.ga, self.num_q)):
            sel = idx[mask] - shift
            feats[mask] = src[sel]
            terms[mask] = src_terms[sel]
        return feats, terms


def _prepare_features(q_feats, g_feats, metric):
    check_metric(metric)
    q, g = feature_pair(q_feats, g_feats, "q_feats", "g_feats")
    return _Features(q, g, metric)


def _merge_top(best_v, best_i, rows: slice, cand_v, cand_i, top: int) -> None:
    """Keep the ``top`` smallest (unordered) of the running lists of ``rows`` and the candidates.

    numpy, single-threaded: these small steps would otherwise each pay a torch thread-pool barrier.
    """
    v = np.concatenate([best_v[rows], cand_v], axis=1)
    i = np.concatenate([best_i[rows], cand_i], axis=1)
    keep = np.argpartition(v, top - 1, axis=1)[:, :top]
    best_v[rows] = np.take_along_axis(v, keep, axis=1)
    best_i[rows] = np.take_along_axis(i, keep, axis=1)


def re_ranking_features(q_feats, g_feats, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
                        metric: str = "sql2", chunk: int | None = None) -> np.ndarray:
    """Re-ranked (Q, G) float32 distances straight from query and gallery features.

    Same result as ``re_ranking(d(q, g), d(q, q), d(g, g), ...)`` with ``d = distance_matrix(..,
    metric)`` (``personsearch.distance``: ``sql2`` = squared L2, torchreid's "euclidean"; ``l2``;
    ``cosine`` = 1 - cosine similarity).
    Distances are computed (float32, torch matmul) in ``chunk`` x ``chunk`` blocks of the symmetric
    N x N matrix, upper triangle only (each block serves its rows and, transposed, its columns), and
    only each row's top-K neighbours are kept, so MSMT17-size problems (N ~ 94,000) run in a few GB:
    the (Q, G) output plus O(chunk^2 + N * K) working memory. ValueError on bad shapes, NaN/inf or
    parameters. Ranks are taken before the per-row normalisation, which is monotone: only exact ties
    created by that division can be ordered differently (see the module note on ties).
    """
    lam = _check_params(k1, k2, lambda_value)
    feats = _prepare_features(q_feats, g_feats, metric)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1):
        raise ValueError(f"chunk must be a positive integer or None, got {chunk!r}")
    num_q, num_g = len(feats.q), len(feats.g)
    n = num_q + num_g
    top = min(max(k1 + 1, k2), n)
    step = int(chunk or FEATURE_CHUNK)
    panels = [(s, min(s + step, num_q)) for s in range(0, num_q, step)]
    panels += [(s, min(s + step, n)) for s in range(num_q, n, step)]  # never straddle queries/gallery
    best_v = np.full((n, top), np.inf, dtype=np.float32)
    best_i = np.full((n, top), -1, dtype=np.int32)
    rowmax = np.zeros(n, dtype=np.float32)
    out = np.empty((num_q, num_g), dtype=np.float32)
    for a, (lo, hi) in enumerate(panels):
        x, xa = feats.span(lo, hi)
        for c_lo, c_hi in panels[a:]:
            y, ya = feats.span(c_lo, c_hi)
            d = block_distance(x, xa, y, ya, metric)
            d.mul_(d)  # S = d^2 in float32; d(x, y) = d(y, x), so the block serves both sides
            dn = d.numpy()
            np.maximum(rowmax[lo:hi], dn.max(axis=1), out=rowmax[lo:hi])
            v, i = torch.topk(d, min(top, c_hi - c_lo), dim=1, largest=False, sorted=False)
            _merge_top(best_v, best_i, slice(lo, hi), v.numpy(), i.numpy() + c_lo, top)
            if c_lo != lo:
                np.maximum(rowmax[c_lo:c_hi], dn.max(axis=0), out=rowmax[c_lo:c_hi])
                v, i = torch.topk(d.T.contiguous(), min(top, hi - lo), dim=1, largest=False, sorted=False)
                _merge_top(best_v, best_i, slice(c_lo, c_hi), v.numpy(), i.numpy() + lo, top)
            if hi <= num_q < c_hi:
                out[lo:hi, c_lo - num_q:c_hi - num_q] = dn
    bad = ~(np.isfinite(rowmax) & (rowmax > 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        _bad_column_max(rowmax[first:first + 1], first, ())
    order = np.argsort(best_v, axis=1, kind="stable")  # nearest first
    values = np.take_along_axis(best_v, order, axis=1)
    ranks = np.take_along_axis(best_i, order, axis=1)
    del best_v, best_i, order
    values /= rowmax[:, None]  # same float32 division as normalising the row first
    rows_per = max(1, BLOCK_ELEMENTS // num_g)
    for s in range(0, num_q, rows_per):  # the original (normalised) distances, query rows
        e = min(s + rows_per, num_q)
        out[s:e] /= rowmax[s:e, None]

    def pair_values(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        res = np.empty(len(rows), dtype=np.float32)
        for s in range(0, len(rows), PAIR_BATCH):
            x, xa = feats.rows(rows[s:s + PAIR_BATCH])
            y, ya = feats.rows(cols[s:s + PAIR_BATCH])
            d = paired_distance(x, xa, y, ya, metric).numpy()
            res[s:s + PAIR_BATCH] = d * d
        return res / rowmax[rows]

    return _finish(ranks, values, pair_values, num_q, out, k1, k2, lam)
