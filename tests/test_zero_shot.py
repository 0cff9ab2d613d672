"""Zero-shot person embeddings: stripes, flip, colour, and the pretrained pipeline's spec options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from personsearch.models.zero_shot import ZeroShotEmbedder, colour_histograms, stripe_pool
from personsearch.pipelines import ZeroShot, is_pretrained, pretrained_options


def _blocks() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())


def test_stripe_pool_is_the_global_mean_then_each_horizontal_band_mean():
    x = torch.arange(2 * 3 * 6 * 4, dtype=torch.float32).view(2, 3, 6, 4)
    pieces = stripe_pool(x, 3)
    assert len(pieces) == 4
    torch.testing.assert_close(pieces[0], x.mean((2, 3)))
    for k in range(3):
        torch.testing.assert_close(pieces[k + 1], x[:, :, 2 * k:2 * k + 2].mean((2, 3)))
    assert len(stripe_pool(x, 0)) == 1


def test_colour_histograms_put_each_stripe_mass_in_its_own_colour_bin():
    rgb = torch.zeros(1, 3, 8, 4)
    rgb[0, 0, :4] = 1.0  # top half red
    rgb[0, 2, 4:] = 1.0  # bottom half blue
    hist = colour_histograms(rgb, parts=2, bins=2).view(3, 8)  # global, top, bottom; code = r*4 + g*2 + b
    red, blue = 4, 1
    assert hist[1, red] == pytest.approx(1.0) and hist[2, blue] == pytest.approx(1.0)
    assert hist[0, red] == pytest.approx(hist[0, blue]) == pytest.approx(2 ** -0.5)


def test_flip_averaging_makes_the_embedding_mirror_invariant():
    x = torch.randn(2, 3, 32, 16)
    flipped = ZeroShotEmbedder(_blocks(), taps=(1, 3), parts=2, flip=True).eval()
    torch.testing.assert_close(flipped(x), flipped(x.flip(-1)), atol=1e-5, rtol=1e-5)
    plain = ZeroShotEmbedder(_blocks(), taps=(3,), parts=2, flip=False).eval()
    assert (plain(x) - plain(x.flip(-1))).abs().max() > 1e-3
    out = flipped(x)
    assert out.shape == (2, (8 + 16) * 3) and torch.allclose(out.norm(dim=1), torch.ones(2))


def test_stripes_tell_apart_people_whose_colours_sit_on_different_body_parts():
    """Red shirt + blue trousers vs blue shirt + red trousers: the same colours, another person."""
    a = torch.zeros(1, 3, 32, 16)
    a[0, 0, :16], a[0, 2, 16:] = 1.0, 1.0
    b = torch.zeros(1, 3, 32, 16)
    b[0, 2, :16], b[0, 0, 16:] = 1.0, 1.0
    norm = (torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    a, b = (a - norm[0]) / norm[1], (b - norm[0]) / norm[1]
    for kwargs in ({"colour_bins": 0}, {"colour_bins": 2}):
        whole = ZeroShotEmbedder(_blocks(), parts=0, flip=False, **kwargs).eval()
        parts = ZeroShotEmbedder(_blocks(), parts=4, flip=False, **kwargs).eval()
        with torch.no_grad():
            assert F.cosine_similarity(parts(a), parts(b)).item() < F.cosine_similarity(whole(a), whole(b)).item() - 0.2


def test_bad_embedder_settings_are_refused():
    with pytest.raises(ValueError, match="weights has 1 values for 2 groups"):
        ZeroShotEmbedder(_blocks(), taps=(1,), colour_bins=4, weights=(1.0,))
    with pytest.raises(ValueError, match="parts and colour_bins"):
        ZeroShotEmbedder(_blocks(), parts=-1)


def test_pretrained_specs_name_the_detector_and_the_embedding():
    assert is_pretrained("pretrained") and is_pretrained("pretrained@tile") and not is_pretrained("pretrained_run")
    opts = pretrained_options("pretrained@detector=ssdlite+tile+parts=4+flip=0+taps=13/-1+colour=8+w=1/1/0.5")
    assert opts["detector"] == "ssdlite" and opts["tile"] is True
    assert opts["zero_shot"] == ZeroShot(taps=(13, -1), parts=4, colour_bins=8, weights=(1.0, 1.0, 0.5), flip=False)
    plain = pretrained_options("pretrained@plain")["zero_shot"]
    assert plain == ZeroShot.plain() and plain.parts == 0 and plain.taps == (-1,) and not plain.flip
    with pytest.raises(ValueError, match=r"unknown options \['stripes'\]"):
        pretrained_options("pretrained@stripes=3")
    with pytest.raises(ValueError, match="malformed option value"):
        pretrained_options("pretrained@parts=many")


def test_the_legacy_pretrained_index_keeps_its_1280_d_embedding():
    from personsearch.index.model import load_model

    old = load_model("pretrained", dim=1280)
    new = load_model("pretrained")
    assert old.dim == 1280 and new.dim == (96 + 320) * 7  # taps 13 and 17, global + 6 stripes


@pytest.mark.parametrize("spec", ["pretrained", "pretrained@plain+detector=ssdlite"])
def test_the_onnxruntime_backend_gives_the_pytorch_embeddings(spec):
    from personsearch.pipelines import load_searcher

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 60, 140], [90, 40, 170, 290], [0, 0, 200, 300]], np.float32)
    fast = load_searcher(spec)
    exact = load_searcher(spec + ("+torch" if "@" in spec else "@torch"))
    assert type(fast.embedder).__name__ == "OnnxZeroShot" and type(exact.embedder).__name__ != "OnnxZeroShot"
    np.testing.assert_allclose(fast.extract_query(image, boxes), exact.extract_query(image, boxes), atol=1e-4)
    with torch.no_grad():  # tuned weights (as `personsearch adapt` does) are followed after refresh()
        for p in fast.embedder.torch_embedder.features[-1].parameters():
            p.mul_(1.5)
        for p in exact.embedder.features[-1].parameters():
            p.mul_(1.5)
    fast.embedder.refresh()
    np.testing.assert_allclose(fast.extract_query(image, boxes), exact.extract_query(image, boxes), atol=1e-4)


def test_a_trained_run_s_crop_embedder_runs_on_onnxruntime_with_the_same_embeddings():
    from personsearch.inference.onnx_embedders import OnnxCropEmbedder
    from personsearch.models import build_reid_model
    from personsearch.inference.onnx_embedders import onnx_or_torch
    from personsearch.pipelines.loading import channels_last

    torch.manual_seed(0)
    model = build_reid_model("mobilenetv2", 10, weights=None).eval()
    crops = torch.randn(5, 3, 256, 128)
    with torch.no_grad():
        expected = model(crops)
    expected = expected[0] if isinstance(expected, (tuple, list)) else expected
    fast = OnnxCropEmbedder(model, (256, 128))
    torch.testing.assert_close(fast(crops), expected.flatten(1), atol=1e-4, rtol=1e-4)

    class NotExportable(nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.numpy().mean((2, 3)))  # leaves the graph: the exporter cannot follow

    with pytest.warns(UserWarning, match="runs in PyTorch: its ONNX export failed"):
        kept = onnx_or_torch(NotExportable(), (32, 16), channels_last)
    assert isinstance(kept, NotExportable)
