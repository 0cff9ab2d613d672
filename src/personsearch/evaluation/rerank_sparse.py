"""Sparse core of k-reciprocal re-ranking: everything after the top-k neighbour lists are known.

Works from the (N, K) nearest-neighbour lists of every row of the normalised distance matrix (see
``rerank.py``), never from an N x N array: reciprocal sets and their expansion are vectorised over
padded index arrays, chunk of rows by chunk of rows; the encodings V and the query-expanded V are
``scipy.sparse`` matrices; the Jaccard distance is computed for the query x gallery block only, by
expanding the pairs that share a non-zero column and summing their minima with ``np.bincount``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

ROW_CHUNK = 4096  # rows per chunk for the reciprocal sets and the expansion (~10-40 MB temporaries)
PAIR_CHUNK = 2_000_000  # query-gallery pairs expanded at once in the Jaccard step (~80 MB)
CELL_CHUNK = 4_000_000  # query rows x gallery columns accumulated at once in the Jaccard step

PairValues = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _chunks(n: int, step: int):
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


def _reciprocal_mask(ranks: np.ndarray, k: int) -> np.ndarray:
    """(N, k) bool: entry (i, a) is True iff i is among the first k neighbours of ranks[i, a]."""
    n = len(ranks)
    mask = np.empty((n, k), dtype=bool)
    for s in _chunks(n, max(1, ROW_CHUNK * 441 // (k * k))):
        rows = np.arange(s.start, s.stop, dtype=ranks.dtype)
        backward = ranks[ranks[s, :k], :k]  # (c, k, k)
        mask[s] = (backward == rows[:, None, None]).any(axis=2)
    return mask


def _expanded_members(ranks, m_full, m_half, s: slice, k: int, h: int):
    """Sorted, de-duplicated expanded k-reciprocal set of each row in ``s``, padded with N.

    Returns (members (c, k + k*h) int64 sorted per row, valid (c, k + k*h) bool).
    """
    n = len(ranks)
    forward = ranks[s, :k].astype(np.int64)  # (c, k)
    in_set = m_full[s]  # (c, k): forward[a] is in R(i, k1)
    cand = ranks[forward, :h]  # (c, k, h): top-h of every candidate
    cand_ok = m_half[forward]  # (c, k, h): ... that is in the candidate's R(., round(k1/2))
    # |R(c, k1/2) & R(i, k1)|: each half-set member is compared with the k members of R(i, k1)
    hit = ((cand[..., None] == forward[:, None, None, :]) & in_set[:, None, None, :]).any(axis=3)
    shared = (hit & cand_ok).sum(axis=2)
    size = cand_ok.sum(axis=2)
    accept = in_set & (shared > 2.0 / 3 * size)  # same float comparison as the reference
    members = np.concatenate([
        np.where(in_set, forward, n),
        np.where(accept[..., None] & cand_ok, cand, n).reshape(len(forward), -1),
    ], axis=1)
    members.sort(axis=1)
    valid = members < n
    valid[:, 1:] &= members[:, 1:] != members[:, :-1]
    return members, valid


def _lookup_values(ranks, values, s: slice, rows_local, cols, pair_values: PairValues, n: int):
    """Normalised distance of each (row, col) pair: from the top-k lists where present, else computed."""
    keys = (np.arange(s.stop - s.start, dtype=np.int64)[:, None] * n + ranks[s]).ravel()
    order = np.argsort(keys)
    keys, known = keys[order], values[s].ravel()[order]
    want = rows_local * n + cols
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    found = keys[pos] == want
    out = np.where(found, known[pos], np.float32(0)).astype(np.float32)
    missing = ~found
    if missing.any():
        out[missing] = pair_values(rows_local[missing] + s.start, cols[missing])
    return out


def encode(ranks: np.ndarray, values: np.ndarray, pair_values: PairValues, k1: int) -> sp.csr_matrix:
    """k-reciprocal encoding V (N x N, float32, sparse) from the sorted top-K lists.

    ``ranks[i]``/``values[i]``: the K >= min(k1 + 1, N) nearest columns of row i of the normalised
    distance matrix and their distances, nearest first; ``pair_values(rows, cols)`` returns that
    matrix's entries for pairs outside the lists.
    """
    n = len(ranks)
    k = min(k1 + 1, n)
    h = min(int(np.around(k1 / 2.0)) + 1, n)
    m_full = _reciprocal_mask(ranks, k)
    m_half = _reciprocal_mask(ranks, h)
    data, indices, counts = [], [], []
    for s in _chunks(n, max(1, ROW_CHUNK * 441 * 11 // (k * k * h))):
        members, valid = _expanded_members(ranks, m_full, m_half, s, k, h)
        rows_local = np.nonzero(valid)[0]
        cols = members[valid]
        dist = _lookup_values(ranks, values, s, rows_local, cols, pair_values, n)
        weight = np.exp(-dist)  # float32, as the reference
        total = np.bincount(rows_local, weights=weight, minlength=s.stop - s.start).astype(np.float32)
        data.append(weight / total[rows_local])
        indices.append(cols.astype(np.int32))
        counts.append(valid.sum(axis=1))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=(n, n))


def query_expand(V: sp.csr_matrix, ranks: np.ndarray, k2: int) -> sp.csr_matrix:
    """Row i replaced by the mean of the rows of its k2 nearest neighbours (itself included)."""
    n = V.shape[0]
    k2 = min(k2, n)
    ones = np.ones(n * k2, dtype=np.float32)
    A = sp.csr_matrix((ones, ranks[:, :k2].astype(np.int32).ravel(), np.arange(0, n * k2 + 1, k2)),
                      shape=(n, n))
    out = (A @ V).tocsr()
    out.data /= np.float32(k2)
    out.eliminate_zeros()
    return out


def jaccard_blend(V: sp.csr_matrix, num_query: int, out: np.ndarray, lambda_value: float) -> np.ndarray:
    """In place: out = (1 - lambda) * Jaccard(V[:Q], V[Q:]) + lambda * out, out being (Q, G)."""
    num_gallery = V.shape[0] - num_query
    vq = V[:num_query].tocsr()
    vg = V[num_query:].tocsc()  # column m -> the gallery rows sharing it, with their weights
    vq.sort_indices()
    col_len = np.diff(vg.indptr)
    entry_row = np.repeat(np.arange(num_query), np.diff(vq.indptr))
    pairs_per_row = np.bincount(entry_row, weights=col_len[vq.indices], minlength=num_query).astype(np.int64)
    start = 0
    max_rows = max(1, CELL_CHUNK // max(num_gallery, 1))
    while start < num_query:
        stop = start + 1
        budget = pairs_per_row[start]
        while stop < num_query and stop - start < max_rows and budget + pairs_per_row[stop] <= PAIR_CHUNK:
            budget += pairs_per_row[stop]
            stop += 1
        lo, hi = vq.indptr[start], vq.indptr[stop]
        m = vq.indices[lo:hi]
        v = vq.data[lo:hi]
        row = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(vq.indptr[start:stop + 1]))
        reps = col_len[m]
        total = int(reps.sum())
        # ragged arange: positions inside vg's column m for each (query entry, gallery row) pair
        first = np.repeat(vg.indptr[m].astype(np.int64) - np.cumsum(reps) + reps, reps)
        pos = first + np.arange(total, dtype=np.int64)
        minima = np.minimum(np.repeat(v, reps), vg.data[pos])
        key = np.repeat(row, reps) * num_gallery + vg.indices[pos]
        overlap = np.bincount(key, weights=minima, minlength=(stop - start) * num_gallery)
        overlap = overlap.astype(np.float32).reshape(stop - start, num_gallery)
        jaccard = 1 - overlap / (2.0 - overlap)
        out[start:stop] = jaccard * (1 - lambda_value) + out[start:stop] * lambda_value
        start = stop
    return out
