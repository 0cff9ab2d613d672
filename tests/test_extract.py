"""Feature extraction (fp32 / bf16, flip, batch formats, checks) and ONNX export + onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from personsearch.inference import (
    ExtractConfig,
    OnnxEmbedder,
    export_onnx,
    extract_features,
    extract_from_paths,
    prepare_model,
)

H, W = 256, 128


def smooth_images(n: int, seed: int, h: int = H, w: int = W) -> torch.Tensor:
    """Random but spatially smooth 'images' (bicubic-upsampled noise), roughly unit scale."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, h // 16, w // 16, generator=g)
    return nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Identity()  # (B, 512) embeddings
    return model.eval()


class TinyEmbedder(nn.Module):
    """Fast stand-in: conv -> GAP -> (B, 16)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 16, 3, stride=4, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x))).flatten(1) + x[:, 0, 0, :1]  # not flip invariant


def _cfg(**kw) -> ExtractConfig:
    return ExtractConfig(progress=False, device="cpu", **kw)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def test_bf16_channels_last_close_to_fp32(resnet18):
    images = smooth_images(8, seed=0)
    fp32 = extract_features(resnet18, [images[:5], images[5:]], _cfg(precision="fp32", channels_last=False))
    bf16 = extract_features(resnet18, [images[:5], images[5:]], _cfg(precision="bf16", channels_last=True))
    assert fp32.dtype == bf16.dtype == np.float32 and fp32.shape == bf16.shape == (8, 512)
    assert _cosines(bf16, fp32).min() >= 0.99
    # Random-init features are all alike (cosine ~0.99 across images), so also compare them
    # around their mean: this is what retrieval distances actually see.
    mean = fp32.mean(0, keepdims=True)
    assert _cosines(bf16 - mean, fp32 - mean).min() >= 0.95
    # the caller's model is left fp32 and in its original mode
    assert next(resnet18.parameters()).dtype == torch.float32 and not resnet18.training


@pytest.fixture(scope="module")
def resnet18_onnx(resnet18, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    path = export_onnx(resnet18, folder / "r18.onnx", height=H, width=W)
    assert path.is_file() and [p.name for p in folder.iterdir()] == ["r18.onnx"]  # no temp file left
    return path


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_matches_pytorch(resnet18, resnet18_onnx, batch):
    emb = OnnxEmbedder(resnet18_onnx, threads=2)
    assert (emb.input_name, emb.output_name) == ("images", "embeddings")
    images = smooth_images(batch, seed=10 + batch)
    with torch.inference_mode():
        ref = resnet18(images).numpy()
    out = emb(images)  # a Tensor is accepted
    assert out.dtype == np.float32 and out.shape == ref.shape == (batch, 512)
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
    np.testing.assert_allclose(emb(images.numpy()), out, rtol=0, atol=0)


def test_onnx_fixed_batch_chunks(tmp_path):
    model = TinyEmbedder().eval()
    path = export_onnx(model, tmp_path / "tiny.onnx", height=64, width=32, dynamic_batch=False)
    emb = OnnxEmbedder(path)
    assert emb.fixed_batch == 1
    images = smooth_images(3, seed=3, h=64, w=32)
    with torch.inference_mode():
        ref = model(images).numpy()
    np.testing.assert_allclose(emb(images), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="expects"):
        emb(smooth_images(1, seed=0, h=32, w=32))


def test_batch_formats_order_dtype():
    model = TinyEmbedder()
    images = smooth_images(7, seed=2, h=64, w=32)
    with torch.inference_mode():
        ref = model.eval()(images).numpy()
    model.train()
    model.pool.eval()  # a mixed-mode model (e.g. frozen BN): every submodule's mode is restored
    pids = torch.arange(7)
    as_tensor = [images[:3], images[3:]]
    as_tuple = [(images[:4], pids[:4], "cam"), (images[4:], pids[4:], "cam")]
    as_dict = [{"images": images[i : i + 2], "pids": pids[i : i + 2]} for i in range(0, 7, 2)]
    for batches in (as_tensor, as_tuple, as_dict, iter(as_tuple)):  # iterators without len too
        out = extract_features(model, batches, _cfg())
        assert out.dtype == np.float32 and out.shape == (7, 16)
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    assert model.training and model.conv.training and not model.pool.training
    with pytest.raises(ValueError, match="'images'"):
        extract_features(model, [{"imgs": images}], _cfg())
    assert extract_features(model, [], _cfg()).shape == (0, 0)


def test_flip_and_normalize_match_manual():
    model = TinyEmbedder().eval()
    images = smooth_images(5, seed=4, h=64, w=32)
    with torch.inference_mode():
        manual = ((model(images) + model(images.flip(3))) / 2).numpy()
    out = extract_features(model, [images[:2], images[2:]], _cfg(flip=True))
    np.testing.assert_allclose(out, manual, rtol=1e-5, atol=1e-6)
    plain = extract_features(model, [images], _cfg())
    assert np.abs(plain - manual).max() > 1e-3  # the flip actually changed something
    normed = extract_features(model, [images], _cfg(flip=True, normalize=True))
    np.testing.assert_allclose(normed, manual / np.linalg.norm(manual, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


class NaNOnSecondCall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = x.mean((2, 3))
        if self.calls == 2:
            out[-1, 0] = float("nan")
        return out


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_nan_output_raises(precision):
    images = smooth_images(4, seed=5, h=32, w=16)
    with pytest.raises(ValueError, match=r"NaN/inf.*batch 1.*\[7\]"):
        extract_features(NaNOnSecondCall(), [images, images], _cfg(precision=precision))


def test_prepare_model_and_config_validation():
    model = TinyEmbedder().train()
    assert prepare_model(model, _cfg(precision="bf16")) is model and not model.training
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.conv.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        ExtractConfig(precision="fp16")


def test_extract_from_paths(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = tmp_path / f"img_{i}.png" if i % 2 else tmp_path / f"img_{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(p)
        paths.append(p)

    def transform(im):
        return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)

    model = TinyEmbedder()
    out = extract_from_paths(model, paths, transform, _cfg(batch_size=2))
    with torch.inference_mode():
        ref = model.eval()(torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])).numpy()
    assert out.shape == (5, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(paths[0].read_bytes()[:100])  # truncated JPEG
    with pytest.raises(ValueError, match="broken.jpg"):
        extract_from_paths(model, [*paths, bad], transform, _cfg(batch_size=2))
    with pytest.raises(ValueError, match="missing.jpg"):
        extract_from_paths(model, [tmp_path / "missing.jpg"], transform, _cfg())
    with pytest.raises(ValueError, match="broken.jpg"):  # raised in a DataLoader worker
        extract_from_paths(model, [bad], transform, _cfg(num_workers=1))


def test_reid_model_through_bf16_and_onnx(tmp_path):
    """The project's ReidModel (eval forward -> (B, D)) through both fast paths."""
    from personsearch.models import build_reid_model

    model = build_reid_model("resnet18", 0).eval()
    images = smooth_images(3, seed=6)
    feats = extract_features(model, [images], _cfg(precision="bf16"))
    with torch.inference_mode():
        ref = model(images).numpy()
    assert feats.shape == ref.shape and _cosines(feats, ref).min() >= 0.99
    emb = OnnxEmbedder(export_onnx(model, tmp_path / "reid.onnx"))
    assert np.abs(emb(images) - ref).max() <= 1e-4 * np.abs(ref).max()


def test_compile_matches_eager_and_pads_last_batch():
    """cfg.compile (torch.compile, CPU weight freezing): same features, odd last batch padded."""
    model = TinyEmbedder()
    images = smooth_images(7, seed=7, h=64, w=32)
    eager = extract_features(model, [images[:4], images[4:]], _cfg(precision="bf16"))
    compiled = extract_features(model, [images[:4], images[4:]], _cfg(precision="bf16", compile=True, flip=True))
    flip_eager = extract_features(model, [images[:4], images[4:]], _cfg(precision="bf16", flip=True))
    assert compiled.shape == (7, 16) and compiled.dtype == np.float32
    assert _cosines(compiled, flip_eager).min() >= 0.999
    assert np.abs(compiled - eager).max() > 1e-3  # flip was applied on the compiled path too


def test_default_extraction_runs_where_the_model_is_and_leaves_it_untouched():
    """Evaluation during training must not move or convert the training model (device="model")."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten()).train()
    before = {name: (p.data_ptr(), p.is_contiguous()) for name, p in model.named_parameters()}
    feats = extract_features(model, [torch.randn(2, 3, 16, 8)], ExtractConfig(progress=False))
    assert feats.shape == (2, 4)
    assert {name: (p.data_ptr(), p.is_contiguous()) for name, p in model.named_parameters()} == before
    assert model.training  # modes restored too
