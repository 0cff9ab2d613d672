"""AlignedReID aligned local distance: agrees with the textbook DP, aligns, differentiates, refuses bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import personsearch.distance.local as ld
from personsearch.distance import local_distance, paired_local_distance


def reference_pair(x: np.ndarray, y: np.ndarray) -> float:
    """Textbook form, float64: stripe distances tanh(||x_i - y_j|| / 2), then the right/down shortest path."""
    h = len(x)
    d = np.tanh(np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)) / 2)
    dp = np.zeros((h, h))
    for i in range(h):
        for j in range(h):
            if i == 0 and j == 0:
                best = 0.0
            elif i == 0:
                best = dp[i, j - 1]
            elif j == 0:
                best = dp[i - 1, j]
            else:
                best = min(dp[i - 1, j], dp[i, j - 1])
            dp[i, j] = best + d[i, j]
    return float(dp[-1, -1])


def reference(x, y) -> np.ndarray:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return np.array([[reference_pair(a, b) for b in y] for a in x])


def features(rng, n, h, c, scale=0.3, relu=False):
    f = rng.normal(size=(n, h, c)) * scale
    return np.maximum(f, 0) + 0.5 if relu else f  # relu: non-negative, off-centre, like BN-ReLU stripes


def as_input(a: np.ndarray, kind: str):
    if kind == "numpy":
        return a.astype(np.float32)
    if kind == "torch32":
        return torch.tensor(a, dtype=torch.float32)
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)  # the differentiable path


def as_numpy(out) -> np.ndarray:
    return out.detach().numpy() if isinstance(out, torch.Tensor) else out


# ---------------------------------------------------------------- agreement with the reference


@pytest.mark.parametrize("kind", ["numpy", "torch32", "torch64grad"])
@pytest.mark.parametrize("h", [1, 2, 3, 8])
@pytest.mark.parametrize("m,n,c,relu", [(1, 1, 1, False), (5, 7, 4, False), (9, 3, 16, True), (4, 11, 32, False)])
def test_matches_reference(kind, h, m, n, c, relu):
    rng = np.random.default_rng(h * 1000 + m * 10 + n)
    x, y = features(rng, m, h, c, relu=relu), features(rng, n, h, c, relu=relu)
    ref = reference(x, y)
    out = local_distance(as_input(x, kind), as_input(y, kind))
    assert out.shape == (m, n)
    np.testing.assert_allclose(as_numpy(out), ref, atol=1e-5, rtol=0)
    k = min(m, n)
    paired = paired_local_distance(as_input(x[:k], kind), as_input(y[:k], kind))
    assert paired.shape == (k,)
    np.testing.assert_allclose(as_numpy(paired), np.diag(ref[:k, :k]), atol=1e-5, rtol=0)
    np.testing.assert_allclose(as_numpy(paired), np.diag(as_numpy(out)[:k, :k]), atol=1e-5, rtol=0)


def test_output_types():
    rng = np.random.default_rng(0)
    x, y = features(rng, 3, 4, 5), features(rng, 2, 4, 5)
    out = local_distance(x, y)  # float64 numpy in -> float32 numpy out
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert isinstance(paired_local_distance(x[:2], y), np.ndarray)
    for dtype in (torch.float32, torch.float64, torch.float16):
        t = local_distance(torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype))
        assert isinstance(t, torch.Tensor) and t.dtype == dtype and t.shape == (3, 2)
        np.testing.assert_allclose(t.float().numpy(), out, atol=1e-2 if dtype == torch.float16 else 1e-5)
    mixed = local_distance(torch.tensor(x, dtype=torch.float32), y.astype(np.float32))
    assert isinstance(mixed, torch.Tensor)
    np.testing.assert_allclose(mixed.numpy(), out, atol=1e-6)
    assert not local_distance(torch.tensor(x, requires_grad=True), torch.tensor(y)).isnan().any()


# ---------------------------------------------------------------- hand-checked case and properties


def test_hand_checked_two_stripes():
    # C = 1: stripe distances |x_i - y_j|; x = (0, 2), y = (0, 4):
    # d = [[tanh(0), tanh(2)], [tanh(1), tanh(1)]] -> down-then-right 2 tanh(1) beats right-then-down tanh(2) + tanh(1)
    x, y = np.array([[[0.0], [2.0]]]), np.array([[[0.0], [4.0]]])
    assert local_distance(x, y)[0, 0] == pytest.approx(2 * math.tanh(1), abs=1e-6)
    # transposed problem: the mirror path wins, same length (the distance is symmetric)
    assert local_distance(y, x)[0, 0] == pytest.approx(2 * math.tanh(1), abs=1e-6)
    # x = (0, 4), y = (2, 4): d = [[tanh(1), tanh(2)], [tanh(1), 0]] -> tanh(1) + tanh(1) + 0
    x2, y2 = np.array([[[0.0], [4.0]]]), np.array([[[2.0], [4.0]]])
    assert local_distance(x2, y2)[0, 0] == pytest.approx(2 * math.tanh(1), abs=1e-6)
    # paper normalisation (e^z - 1) / (e^z + 1) on z = ||.||, equal to tanh(z / 2)
    z = 2.0
    assert math.tanh(z / 2) == pytest.approx((math.exp(z) - 1) / (math.exp(z) + 1))


def test_symmetric():
    rng = np.random.default_rng(1)
    x, y = features(rng, 6, 8, 8), features(rng, 5, 8, 8)
    np.testing.assert_allclose(local_distance(x, y), local_distance(y, x).T, atol=1e-6)


def test_identical_inputs():
    rng = np.random.default_rng(2)
    # a path always visits 2H - 1 cells, so identical inputs give 0 only when the off-diagonal cells
    # it must cross are 0 too: H = 1, or stripes equal within each image. Large, off-centre features
    # make the expanded-form |x|^2 + |y|^2 - 2xy cancel badly; the exact recomputation must still give 0.
    one = rng.normal(size=(4, 1, 64)) * 10 + 100
    const = np.repeat(rng.normal(size=(4, 1, 64)) * 10 + 100, 8, axis=1)
    for x in (one, const):
        for inp in (x.astype(np.float32), torch.tensor(x, dtype=torch.float32)):
            assert np.all(np.diag(as_numpy(local_distance(inp, inp))) == 0)
            assert np.all(as_numpy(paired_local_distance(inp, inp)) == 0)
    # copies scattered over several blocks of different shapes (block row/column -> stripe mapping)
    q = np.repeat(rng.normal(size=(5, 1, 16)) * 10 + 100, 8, axis=1)
    g = np.repeat(rng.normal(size=(7, 1, 16)) * 10 + 100, 8, axis=1)
    g[3], g[6] = q[1], q[4]
    ref = reference(q, g)
    for chunk in (None, 1, 3, 6):
        for kind in ("numpy", "torch64grad"):
            out = as_numpy(local_distance(as_input(q, kind), as_input(g, kind), chunk=chunk))
            exact_zero = kind == "numpy"  # the differentiable path keeps an eps inside the square root
            assert (out[1, 3], out[4, 6]) == (0, 0) if exact_zero else max(out[1, 3], out[4, 6]) < 1e-5
            np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    # general sequences: the diagonal cells are exactly 0, the rest as the reference
    x = features(rng, 3, 8, 16) * 10 + 50
    out = local_distance(x.astype(np.float32), x.astype(np.float32))
    np.testing.assert_allclose(out, reference(x, x), atol=1e-5, rtol=0)
    staircase = [sum(math.tanh(np.linalg.norm(a[i] - a[i + 1]) / 2) for i in range(7)) for a in x]
    assert np.all(np.diag(out) <= np.array(staircase) + 1e-5)


def unaligned(x, y) -> np.ndarray:
    """Plain stripe-by-stripe sum: sum_i tanh(||x_i - y_i|| / 2)."""
    return np.tanh(np.linalg.norm(x[:, None] - y[None], axis=-1) / 2).sum(-1)


def test_alignment_of_shifted_crop():
    rng = np.random.default_rng(3)
    h, c = 8, 16
    x = rng.normal(size=(1, h, c)) * 3  # stripes far apart: distinct body parts
    shifted = np.concatenate([x[:, 1:], rng.normal(size=(1, 1, c)) * 3], axis=1)  # crop moved by one stripe
    shifted_rep = np.concatenate([x[:, 1:], x[:, -1:]], axis=1)  # ... padded with its bottom stripe
    half = np.concatenate([x[:, : h // 2], rng.normal(size=(1, h - h // 2, c)) * 3], axis=1)  # half the parts match
    gallery = np.concatenate([shifted, shifted_rep, half])
    aligned, plain = local_distance(x, gallery)[0], unaligned(x, gallery)[0]
    # the path follows the shifted diagonal: never worse than the plain stripe-by-stripe sum
    assert np.all(aligned[:2] <= plain[:2] + 1e-5)
    # alignment recovers the mis-aligned crop: nearest under the aligned distance, while the plain
    # sum prefers the half-matching distractor
    assert aligned.argmin() in (0, 1) and plain.argmin() == 2
    assert aligned[:2].max() < aligned[2] - 1.5
    # and it stays as close as the person itself (H - 1 off-diagonal cells at ~1 each) up to one stripe
    assert aligned[0] <= local_distance(x, x)[0, 0] + 1 + 1e-5


# ---------------------------------------------------------------- gradients


def test_gradcheck():
    rng = np.random.default_rng(4)
    x = torch.tensor(features(rng, 2, 3, 4), dtype=torch.float64, requires_grad=True)
    y = torch.tensor(features(rng, 3, 3, 4), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: local_distance(a, b), (x, y), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(lambda a, b: paired_local_distance(a, b), (x, y[:2]), eps=1e-6, atol=1e-6)


def test_sgd_reduces_distance():
    torch.manual_seed(5)
    target = torch.randn(1, 8, 16) * 0.3  # in tanh's working range (far-apart stripes saturate at 1)
    param = torch.nn.Parameter(torch.randn(1, 8, 16) * 0.3)
    opt = torch.optim.SGD([param], lr=0.5)
    start = paired_local_distance(param, target).item()
    for _ in range(30):
        opt.zero_grad()
        loss = paired_local_distance(param, target).sum()
        loss.backward()
        opt.step()
    full = local_distance(param, target)
    assert full.item() < 0.6 * start
    assert full.requires_grad and full.item() == pytest.approx(paired_local_distance(param, target).item(), abs=1e-5)


def test_self_distance_gradient_finite():
    # mutual learning differentiates local_distance(f, f): the zero-distance cells must not give NaN/inf
    torch.manual_seed(6)
    f = torch.relu(torch.randn(6, 8, 32)).requires_grad_()
    d = local_distance(f, f)
    (d.pow(2).mean() + paired_local_distance(f, f).sum()).backward()
    assert torch.isfinite(f.grad).all()
    with torch.no_grad():
        np.testing.assert_allclose(d.detach().numpy(), local_distance(f, f).numpy(), atol=1e-5)


# ---------------------------------------------------------------- chunking


@pytest.mark.parametrize("kind", ["numpy", "torch64grad"])
def test_chunk_sizes_agree(kind, monkeypatch):
    rng = np.random.default_rng(7)
    x, y = features(rng, 13, 8, 8, relu=True), features(rng, 17, 8, 8, relu=True)
    default = as_numpy(local_distance(as_input(x, kind), as_input(y, kind)))
    for chunk in (1, 7, 50):
        out = as_numpy(local_distance(as_input(x, kind), as_input(y, kind), chunk=chunk))
        np.testing.assert_allclose(out, default, atol=1e-6, rtol=0)
        paired = as_numpy(paired_local_distance(as_input(x[:13], kind), as_input(y[:13], kind), chunk=chunk))
        np.testing.assert_allclose(paired, np.diag(default[:13, :13]), atol=1e-5, rtol=0)
    monkeypatch.setattr(ld, "GALLERY_BLOCK", 5)  # default chunk, several gallery and query blocks
    np.testing.assert_allclose(as_numpy(local_distance(as_input(x, kind), as_input(y, kind))), default, atol=1e-6)


def test_worker_threads_match_inline_and_restore_thread_count():
    rng = np.random.default_rng(8)
    x, y = features(rng, 9, 8, 8, relu=True), features(rng, 14, 8, 8, relu=True)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # blocks inline
        inline = local_distance(x, y, chunk=5)
        torch.set_num_threads(3)  # blocks on 3 worker threads
        pooled = local_distance(x, y, chunk=5)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(saved)
    np.testing.assert_array_equal(pooled, inline)
    np.testing.assert_allclose(pooled, reference(x, y), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("x_shape,y_shape,match", [
    ((4, 8), (3, 8, 16), r"x must have 3 dimensions.*\(4, 8\)"),
    ((4, 8, 16), (3, 8, 16, 1), r"y must have 3 dimensions.*\(3, 8, 16, 1\)"),
    ((4, 8, 16), (3, 6, 16), r"same stripe count H.*x \(4, 8, 16\), y \(3, 6, 16\)"),
    ((4, 8, 16), (3, 8, 12), r"channel count C.*x \(4, 8, 16\), y \(3, 8, 12\)"),
    ((0, 8, 16), (3, 8, 16), r"x is empty.*\(0, 8, 16\)"),
    ((4, 8, 16), (0, 8, 16), r"y is empty.*\(0, 8, 16\)"),
    ((4, 0, 16), (3, 0, 16), r"x is empty.*\(4, 0, 16\)"),
])
@pytest.mark.parametrize("as_torch", [False, True])
def test_bad_shapes(x_shape, y_shape, match, as_torch):
    x, y = np.zeros(x_shape, np.float32), np.zeros(y_shape, np.float32)
    if as_torch:
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    with pytest.raises(ValueError, match=match):
        local_distance(x, y)
    with pytest.raises(ValueError, match=match):
        paired_local_distance(x, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite(bad):
    x, y = np.zeros((3, 4, 5), np.float32), np.zeros((2, 4, 5), np.float32)
    y[1, 2, 3] = bad
    with pytest.raises(ValueError, match=r"y contains NaN or inf.*\(1, 2, 3\).*y \(2, 4, 5\)"):
        local_distance(x, y)
    with pytest.raises(ValueError, match=r"x contains NaN or inf"):
        local_distance(torch.from_numpy(y), torch.from_numpy(x))
    with pytest.raises(ValueError, match=r"y contains NaN or inf"):
        paired_local_distance(x[:2], y)


def test_paired_needs_equal_counts_and_valid_chunk():
    x, y = np.zeros((3, 4, 5)), np.zeros((2, 4, 5))
    with pytest.raises(ValueError, match=r"as many sequences.*x \(3, 4, 5\), y \(2, 4, 5\)"):
        paired_local_distance(x, y)
    for chunk in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="chunk must be a positive integer"):
            local_distance(x, y, chunk=chunk)
    with pytest.raises(ValueError, match="must be real"):
        local_distance(torch.zeros(3, 4, 5, dtype=torch.complex64), y)
