"""AlignedReID's aligned local distance (Zhang et al., arXiv 1711.08184, "dynamically matching local information").

Two images are described by H horizontal stripe features each, x (H, C) and y (H, C). Every stripe pair
gets d_ij = tanh(||x_i - y_j|| / 2) (the paper's (e^z - 1) / (e^z + 1), in stable form); the aligned
distance is the length of the shortest path from (0, 0) to (H-1, H-1) through the H x H matrix d, moving
only right or down (the sum of the visited entries). A path always visits exactly 2H - 1 entries, so
identical images score 0 only when H = 1 or their stripes are all equal: the path must cross H - 1
off-diagonal cells d(x_i, x_i+1). The distance is symmetric (transposing d mirrors the paths).

Computation, vectorised over image pairs (no Python loop over pairs):
- stripe distances of a block of queries x gallery items come from ONE matrix product of the
  (H*m, C+2) and (H*n, C+2) augmented stripe matrices [-2x, |x|^2, 1] . [y, 1, |y|^2] (features
  centred first, which shrinks the cancellation error of the expanded form); entries too small to be
  trusted in the expanded form (|x - y|^2 < tau (|x|^2 + |y|^2)) are recomputed exactly from the
  differences, so identical stripes give exactly 0;
- tanh(z / 2) = 2 sigmoid(z) - 1, and the DP runs on sigmoid(z) - 0.5 (= d / 2, exact subtraction)
  and doubles at the end: torch's CPU float tanh is ~10x slower than its sigmoid (not vectorised);
- the shortest path runs over the 2H - 1 anti-diagonals: every cell of diagonal k depends only on
  diagonal k - 1, so each step is one vectorised min + add over all pairs and cells of the diagonal
  (in place, through strided views; an out-of-place variant carries autograd).
Blocks of at most ``chunk`` pairs bound the memory: (H*H + H) * itemsize bytes of temporaries per pair.
On CPU the blocks run on torch.get_num_threads() single-threaded workers (coarse-grained: no OpenMP
fork/join per small op, and one descheduled thread does not stall the others on a loaded machine).

Inputs: numpy arrays (result: numpy float32) or torch tensors (result: a tensor on the same device,
same floating dtype; float16/bfloat16 are computed in float32). When autograd is on and an input
requires grad the result is differentiable (an eps inside the square root keeps the derivative
finite at zero distance), so the same code serves the local triplet loss.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

import numpy as np
import torch

MEMORY_BUDGET = 256 << 20  # bytes of block temporaries (all workers) the default chunk stays under
PAIRS_PER_BLOCK = 1 << 18  # default pairs per block (per worker thread) when the budget allows
GALLERY_BLOCK = 4096  # gallery items per block (queries per block = chunk // this)
SQRT_EPS = 1e-12  # inside the square root on the differentiable path only


# ---------------------------------------------------------------- input handling


def _shape(a) -> tuple[int, ...]:
    return tuple(int(s) for s in a.shape)


def _to_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor, bool, torch.dtype]:
    """(x, y) as tensors of a common floating compute dtype on a common device; whether the inputs were numpy."""
    x_is_t, y_is_t = isinstance(x, torch.Tensor), isinstance(y, torch.Tensor)
    if not (x_is_t or y_is_t):  # numpy (or array-like) in, numpy float32 out
        xs, ys = (np.ascontiguousarray(np.asarray(a, dtype=np.float32)) for a in (x, y))
        return torch.from_numpy(xs), torch.from_numpy(ys), True, torch.float32
    ref = x if x_is_t else y
    if not x_is_t:
        x = torch.as_tensor(np.asarray(x), device=ref.device)
    if not y_is_t:
        y = torch.as_tensor(np.asarray(y), device=ref.device)
    if x.device != y.device:
        raise ValueError(f"x and y are on different devices: x on {x.device}, y on {y.device}")
    if x.is_complex() or y.is_complex():
        raise ValueError(f"x and y must be real, got {x.dtype} and {y.dtype}")
    out_dtype = torch.promote_types(x.dtype, y.dtype)
    if not out_dtype.is_floating_point:
        out_dtype = torch.get_default_dtype()
    return x, y, False, out_dtype


def _validate(x: torch.Tensor, y: torch.Tensor, paired: bool) -> None:
    shapes = f"x {_shape(x)}, y {_shape(y)}"
    for name, a, n in (("x", x, "M" if not paired else "N"), ("y", y, "N")):
        if a.ndim != 3:
            raise ValueError(f"{name} must have 3 dimensions ({n} images, H stripes, C channels), "
                             f"got shape {_shape(a)} ({shapes})")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must have the same stripe count H and channel count C: {shapes}")
    for name, a in (("x", x), ("y", y)):
        if a.numel() == 0:
            raise ValueError(f"{name} is empty (shape {_shape(a)}): need at least one image, one stripe "
                             f"and one channel ({shapes})")
    if paired and x.shape[0] != y.shape[0]:
        raise ValueError(f"paired distances need as many sequences in x as in y: {shapes}")
    for name, a in (("x", x), ("y", y)):
        if a.is_floating_point():
            finite = torch.isfinite(a.detach())
            if not bool(finite.all()):
                bad = tuple(int(i) for i in (~finite).nonzero()[0])
                raise ValueError(f"{name} contains NaN or inf (first at index {bad}; {shapes})")


def _check_chunk(chunk, default: int) -> int:
    if chunk is None:
        return default
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer (pairs per block) or None, got {chunk!r}")
    return int(chunk)


def _prepare(x, y, paired: bool):
    xt, yt, numpy_io, out_dtype = _to_tensors(x, y)
    _validate(xt, yt, paired)
    compute = torch.float64 if out_dtype == torch.float64 else torch.float32
    xt, yt = xt.to(compute), yt.to(compute)
    grad = torch.is_grad_enabled() and (xt.requires_grad or yt.requires_grad)
    return xt, yt, numpy_io, out_dtype, grad


def _finish(out: torch.Tensor, numpy_io: bool, out_dtype: torch.dtype):
    if numpy_io:
        return out.detach().cpu().numpy().astype(np.float32, copy=False)
    return out.to(out_dtype)


def _refine_tau(dtype: torch.dtype) -> float:
    """Squared distances below tau * (|x|^2 + |y|^2) are recomputed exactly from the differences."""
    return min(1.0, 16 * math.sqrt(torch.finfo(dtype).eps))


_THREADS_LOCK = threading.Lock()


@contextmanager
def _single_threaded_torch(wanted: bool):
    """Yield True with torch's intra-op thread count set to 1 (restored on exit, by the same thread).

    Only one call at a time changes it (a non-blocking lock): a concurrent call gets False and runs
    its blocks inline, so the thread that saved the count is always the one that restores it.
    """
    if not wanted or not _THREADS_LOCK.acquire(blocking=False):
        yield False
        return
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        yield True
    finally:
        torch.set_num_threads(saved)
        _THREADS_LOCK.release()


# ---------------------------------------------------------------- shortest path


def _dp_inplace(d4: torch.Tensor, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Shortest right/down path through d4 (H, m, H, n) = cell (i, j) of pair (a, b), in place; -> (m, n) view.

    Anti-diagonal wavefront: cells (i, k - i) of diagonal k sit at a constant stride (stride_i - stride_j)
    from each other, so a whole diagonal, over all pairs, is one strided view. ``scratch``: optional
    buffer of at least (H - 1) * m * n elements, reused across blocks.
    """
    h, m, _, n = d4.shape
    si, sa, sj, sb = d4.stride()
    base = d4.storage_offset()
    step = si - sj

    def diag(i0: int, j0: int, length: int) -> torch.Tensor:  # cells (i0 + t, j0 - t), t < length
        return torch.as_strided(d4, (length, m, n), (step, sa, sb), base + i0 * si + j0 * sj)

    size = max(h - 1, 1) * m * n
    if scratch is None:
        scratch = torch.empty(size, dtype=d4.dtype, device=d4.device)
    tmp = scratch[:size].view(max(h - 1, 1), m, n)
    for k in range(1, 2 * h - 1):
        if k < h:  # the two border cells (0, k) and (k, 0) have a single predecessor
            diag(0, k, 1).add_(diag(0, k - 1, 1))
            diag(k, 0, 1).add_(diag(k - 1, 0, 1))
        lo, hi = max(1, k - h + 1), min(k - 1, h - 1)  # interior cells of diagonal k
        if hi < lo:
            continue
        length = hi - lo + 1
        t = tmp[:length]
        torch.minimum(diag(lo - 1, k - lo, length), diag(lo, k - 1 - lo, length), out=t)  # up, left
        diag(lo, k - lo, length).add_(t)
    return d4[h - 1, :, h - 1, :]


def _dp_autograd(cells: torch.Tensor, h: int) -> torch.Tensor:
    """Shortest right/down path, out of place (differentiable): cells (H*H, m, n) in row-major (i, j) -> (m, n)."""
    order = [i * h + (k - i) for k in range(2 * h - 1) for i in range(max(0, k - h + 1), min(k, h - 1) + 1)]
    diags = cells.index_select(0, torch.tensor(order, device=cells.device))
    inf = torch.full((1, *cells.shape[1:]), math.inf, dtype=cells.dtype, device=cells.device)
    prev, start = diags[:1], 1
    for k in range(1, 2 * h - 1):
        lo, hi = max(0, k - h + 1), min(k, h - 1)
        length = hi - lo + 1
        cur = diags[start:start + length]
        start += length
        padded = torch.cat([inf, prev, inf])  # index p <-> cell row (lo of diagonal k-1) + p - 1
        off = lo - max(0, k - h)
        prev = cur + torch.minimum(padded[off:off + length], padded[off + 1:off + 1 + length])  # up, left
    return prev[0]


# ---------------------------------------------------------------- stripe distances -> half tanh


def _half_tanh(sq: torch.Tensor, grad: bool) -> torch.Tensor:
    """sigmoid(sqrt(sq)) - 0.5 = tanh(sqrt(sq) / 2) / 2, in place unless ``grad``."""
    if grad:
        return torch.sigmoid(torch.sqrt(sq.clamp_min(0) + SQRT_EPS)) - 0.5
    return sq.clamp_min_(0).sqrt_().sigmoid_().sub_(0.5)


def _refine(sq, nx, ny, x_blk, y_blk, tau, grad):
    """Recompute entries of the expanded-form block ``sq`` that are too small to trust, exactly.

    sq (H*m, H*n): row i*m + a = stripe i of query a (squared norms nx), column j*n + b = stripe j of
    gallery item b (ny); x_blk (H, m, C) / y_blk (H, n, C) are the original (uncentred) stripe features.
    """
    nx, ny, raw = nx.detach(), ny.detach(), sq.detach()
    cand = (raw.amin(1) < tau * (nx + ny.max())).nonzero().squeeze(1)  # one read pass: rows that may qualify
    if cand.numel() == 0:
        return sq
    r, cols = (raw[cand] < tau * (nx[cand, None] + ny[None, :])).nonzero(as_tuple=True)
    if r.numel() == 0:
        return sq
    rows = cand[r]
    m, n = x_blk.shape[1], y_blk.shape[1]
    exact = (x_blk[rows // m, rows % m] - y_blk[cols // n, cols % n]).pow(2).sum(1)
    if grad:
        return sq.index_put((rows, cols), exact)
    sq[rows, cols] = exact
    return sq


def _default_pairs(h: int, itemsize: int, per_pair_extra: int = 0, workers: int = 1) -> int:
    """Pairs per block: PAIRS_PER_BLOCK, or fewer so that ``workers`` blocks fit in MEMORY_BUDGET."""
    per_pair = (h * h + h) * itemsize + per_pair_extra
    return max(1, min(PAIRS_PER_BLOCK, MEMORY_BUDGET // (per_pair * workers)))


# ---------------------------------------------------------------- public API


def local_distance(x, y, chunk: int | None = None):
    """(M, N) aligned local distances between x (M, H, C) and y (N, H, C) stripe features.

    numpy in -> numpy float32 out; torch in -> torch out (same device and floating dtype,
    differentiable when autograd is on and an input requires grad). ``chunk`` = at most this many
    (query, gallery) pairs per block; each block needs (H*H + H) * itemsize bytes per pair of
    temporaries. Default: 2^18 pairs (72 MB at H=8, float32) per worker, fewer when H is larger, so
    all workers together stay under ~256 MB. On CPU without autograd, blocks run on
    torch.get_num_threads() worker threads, each single-threaded (torch's thread count is set to 1
    for the duration of the call and restored): whole blocks in parallel rather than OpenMP inside
    every small op, which also keeps a loaded machine from stalling the call.
    Raises ValueError on wrong dimensions, mismatched H or C, empty input or NaN/inf.
    """
    xt, yt, numpy_io, out_dtype, grad = _prepare(x, y, paired=False)
    m_all, h, c = xt.shape
    n_all = yt.shape[0]
    workers = torch.get_num_threads() if xt.device.type == "cpu" and not grad else 1
    pairs = _check_chunk(chunk, _default_pairs(h, xt.element_size(), workers=workers))
    n_blk = min(n_all, pairs, GALLERY_BLOCK)
    m_blk = min(m_all, max(1, pairs // n_blk))
    blocks = [(q0, g0) for g0 in range(0, n_all, n_blk) for q0 in range(0, m_all, m_blk)]
    workers = min(workers, len(blocks))
    tau = _refine_tau(xt.dtype)
    with nullcontext() if grad else torch.no_grad():
        mu = (xt.detach().sum((0, 1)) + yt.detach().sum((0, 1))) / ((m_all + n_all) * h)
        xs, ys = (xt - mu).transpose(0, 1), (yt - mu).transpose(0, 1)  # (H, M, C), (H, N, C) centred
        nx, ny = (xs * xs).sum(2), (ys * ys).sum(2)  # (H, M), (H, N)
        xa = torch.cat([xs * -2, nx[..., None], torch.ones_like(nx)[..., None]], 2)  # (H, M, C + 2)
        ya = torch.cat([ys, torch.ones_like(ny)[..., None], ny[..., None]], 2)  # (H, N, C + 2)
        del xs, ys
        # GEMM operands per block, laid out once: rows (i, a) = stripe i of item a of the block
        xa_blocks = {q0: xa[:, q0:q0 + m_blk].reshape(-1, c + 2) for q0 in range(0, m_all, m_blk)}
        ya_blocks = {g0: ya[:, g0:g0 + n_blk].reshape(-1, c + 2) for g0 in range(0, n_all, n_blk)}
        del xa, ya
        x_raw, y_raw = xt.transpose(0, 1), yt.transpose(0, 1)

        def half_tanh_block(q0: int, g0: int, buf: torch.Tensor | None) -> torch.Tensor:
            """(H, m, H, n) block of d / 2, cell (i, j) of pair (query q0 + a, gallery g0 + b)."""
            q1, g1 = min(q0 + m_blk, m_all), min(g0 + n_blk, n_all)
            m, n = q1 - q0, g1 - g0
            xa_b, ya_b = xa_blocks[q0], ya_blocks[g0]
            if buf is None:
                sq = xa_b @ ya_b.T  # (H*m, H*n): rows (i, a), columns (j, b)
            else:
                sq = torch.mm(xa_b, ya_b.T, out=buf[:h * m * h * n].view(h * m, h * n))
            sq = _refine(sq, nx[:, q0:q1].reshape(-1), ny[:, g0:g1].reshape(-1), x_raw[:, q0:q1],
                         y_raw[:, g0:g1], tau, grad)
            return _half_tanh(sq, grad).view(h, m, h, n)

        if grad:
            rows_out: dict[int, list[torch.Tensor]] = {}
            for q0, g0 in blocks:  # gallery-major: each query row's blocks arrive in column order
                half = half_tanh_block(q0, g0, None)
                cells = half.permute(0, 2, 1, 3).reshape(h * h, *half.shape[1::2])
                rows_out.setdefault(q0, []).append(_dp_autograd(cells, h) * 2)
            out = torch.cat([torch.cat(rows_out[q0], 1) for q0 in sorted(rows_out)], 0)
        else:
            out = torch.empty((m_all, n_all), dtype=xt.dtype, device=xt.device)
            local = threading.local()

            def run(block: tuple[int, int]) -> None:
                if not hasattr(local, "buf"):  # per-worker buffers, reused across its blocks
                    local.buf = torch.empty(h * m_blk * h * n_blk, dtype=xt.dtype, device=xt.device)
                    local.scratch = torch.empty(max(h - 1, 1) * m_blk * n_blk, dtype=xt.dtype, device=xt.device)
                q0, g0 = block
                half = half_tanh_block(q0, g0, local.buf)
                torch.mul(_dp_inplace(half, local.scratch), 2, out=out[q0:q0 + half.shape[1], g0:g0 + half.shape[3]])

            with _single_threaded_torch(workers > 1) as parallel:
                if parallel:
                    with ThreadPoolExecutor(workers) as pool:
                        list(pool.map(run, blocks))
                else:
                    for block in blocks:
                        run(block)
    return _finish(out, numpy_io, out_dtype)


def paired_local_distance(x, y, chunk: int | None = None):
    """(N,) aligned local distances between x[k] and y[k], for x, y (N, H, C): the training form.

    Stripe distances come straight from the differences (exact). Same input/output types,
    differentiability and errors as :func:`local_distance`; ``chunk`` = pairs per block.
    """
    xt, yt, numpy_io, out_dtype, grad = _prepare(x, y, paired=True)
    n_all, h, c = xt.shape
    pairs = _check_chunk(chunk, _default_pairs(h, xt.element_size(), 2 * h * h * c * xt.element_size()))
    parts = []
    with nullcontext() if grad else torch.no_grad():
        for p0 in range(0, n_all, pairs):
            xb = xt[p0:p0 + pairs].transpose(0, 1)  # (H, n, C)
            yb = yt[p0:p0 + pairs].transpose(0, 1)
            n = xb.shape[1]
            sq = (xb[:, None] - yb[None, :]).pow(2).sum(-1)  # (H, H, n): cell (i, j) of pair b
            half = _half_tanh(sq, grad)
            if grad:
                parts.append(_dp_autograd(half.reshape(h * h, 1, n), h)[0] * 2)
            else:
                parts.append(_dp_inplace(half.view(h, 1, h, n)).reshape(n) * 2)
    return _finish(torch.cat(parts), numpy_io, out_dtype)


__all__ = ["local_distance", "paired_local_distance"]
