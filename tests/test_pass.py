"""PASS / DINO pre-training parts: part-token layout, multi-crop areas, the loss pairing, centring,
the frozen prototype layer, the EMA teacher, and a bit-identical resume of a pre-training run."""

from __future__ import annotations

import math

import pytest
import torch

from personsearch.data.multicrop import MultiCrop, MultiCropConfig, part_areas
from personsearch.engine import train
from personsearch.losses.dino import DinoHead, TokenCenters, ViewLayout, pass_pairs, self_distillation_loss
from personsearch.methods.runs import build_recipe, load_recipe_config, save_run_config
from personsearch.methods.smoke import smoke_overrides
from personsearch.models.part_vit import PartTokenViT

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return PartTokenViT("vit_tiny", (64, 32), num_parts=3, depth=2).eval()


def test_views_carry_cls_and_their_parts(vit):
    full, small = torch.randn(2, 3, 64, 32), torch.randn(2, 3, 32, 16)
    assert vit(full).shape == (2, 4, 192)  # global view: [CLS, P1, P2, P3]
    assert vit(small, [1]).shape == (2, 2, 192)  # local view of area 1: [CLS, P2]; patch grid resampled
    assert vit(full, []).shape == (2, 1, 192)
    assert vit.embed(full).shape == (2, 384) and vit.embed_dim == 384
    with pytest.raises(ValueError, match="part index 3 out of range"):
        vit(full, [3])


def test_each_part_token_has_its_own_position_vector(vit):
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        base = vit(x, [0])[:, 1]
        saved = vit.part_pos[0, 0].clone()
        vit.part_pos[0, 0] += torch.randn(192)  # (a uniform shift would vanish in LayerNorm)
        moved = vit(x, [0])[:, 1]
        other = vit(x, [1])[:, 1]
        vit.part_pos[0, 0] = saved
    assert not torch.allclose(base, moved, atol=1e-4)  # PART_1 reads its own position vector
    assert not torch.allclose(base, other, atol=1e-4)  # and differs from PART_2


def test_mobilenetv2_stem_gives_the_patch_grid_and_imagenet_features():
    from personsearch.models.backbones import build_backbone

    torch.manual_seed(0)
    hybrid = PartTokenViT("vit_tiny", (64, 32), num_parts=3, depth=1, stem="mobilenetv2").eval()
    x = torch.randn(2, 3, 64, 32)
    assert hybrid.vit.patch_embed(x).shape == (2, 4, 2, 192)  # the 16x16-patch grid of a 64x32 view
    assert hybrid(x).shape == (2, 4, 192) and hybrid(torch.randn(2, 3, 32, 16), [2]).shape == (2, 2, 192)
    imagenet = build_backbone("mobilenetv2", weights="imagenet").features[:14].eval()
    with torch.no_grad():  # the stem's body is ImageNet MobileNetV2 up to stride 16
        assert torch.equal(hybrid.vit.patch_embed.body(x), imagenet(x))
    scratch = PartTokenViT("vit_tiny", (64, 32), num_parts=3, depth=1, stem="mobilenetv2", stem_pretrained=False)
    first = "vit.patch_embed.body.0.0.weight"
    assert not torch.equal(scratch.state_dict()[first], hybrid.state_dict()[first])
    with pytest.raises(ValueError, match="unknown ViT stem 'resnet'"):
        PartTokenViT("vit_tiny", (64, 32), stem="resnet")


def test_pass_recipes_build_the_stem_they_are_told(tiny_synth, tmp_path):
    pre = load_recipe_config("pass", [*smoke_overrides("pass", tiny_synth, tmp_path, "cpu", "none"),
                                      "model.stem=mobilenetv2", "model.stem_weights=null"])
    backbone = build_recipe(pre, tmp_path).build_model().student.backbone
    assert type(backbone.vit.patch_embed).__name__ == "MobileNetV2Stem"
    for bad, field in (("model.stem_weights=coco", "model.stem_weights"), ("model.stem=resnet", "model.stem")):
        with pytest.raises(ValueError, match=field):  # refused when the config is read, naming the field
            load_recipe_config("pass_reid", [*smoke_overrides("pass_reid", tiny_synth, tmp_path, "cpu", "none"), bad])


def test_part_areas_are_pass_s_overlapping_halves():
    assert part_areas(3, 128) == [(0, 64), (32, 64), (64, 64)]  # tops 0, H/4, H/2; half height
    assert part_areas(1, 128) == [(0, 128)] and part_areas(0, 128) == []


def test_multicrop_views_follow_the_layout(tiny_synth):
    from personsearch.data.folder import list_images
    from personsearch.data.images import read_image

    image = read_image(list_images(tiny_synth / "unlabeled")[0])
    crop = MultiCrop(MultiCropConfig(height=64, width=32), num_parts=3)
    views = crop(image)
    assert crop.local_areas == (0, 0, 0, 1, 1, 1, 2, 2, 2)
    assert [tuple(v.shape) for v in views] == [(3, 64, 32)] * 2 + [(3, 32, 16)] * 9
    dino = MultiCrop(MultiCropConfig(height=64, width=32, local_views=4), num_parts=0)
    assert dino.local_areas == (None,) * 4 and len(dino(image)) == 6
    with pytest.raises(ValueError, match="multiples of 32"):
        MultiCropConfig(height=100, width=32)


def test_cast_jitter_gives_each_view_its_own_channel_gains():
    from personsearch.data.multicrop import ChannelGain

    torch.manual_seed(0)
    grey = torch.full((3, 8, 4), 0.5)
    a, b = ChannelGain(0.3)(grey.clone()), ChannelGain(0.3)(grey.clone())
    gains_a, gains_b = a[:, 0, 0] / 0.5, b[:, 0, 0] / 0.5
    assert torch.all((gains_a >= 0.7) & (gains_a <= 1.3)) and not torch.allclose(gains_a, gains_b)
    assert torch.allclose(a, a[:, :1, :1].expand_as(a))  # one gain per channel, the whole view
    assert ChannelGain(0.9)(torch.ones(3, 2, 2)).max() <= 1.0  # clamped to the image range
    plain = MultiCropConfig(height=64, width=32, color_jitter=(0, 0, 0, 0), grayscale=0, solarize=0)
    assert not any(isinstance(t, ChannelGain) for t in MultiCrop(plain, 3).local_tf.transforms)
    cast = MultiCrop(MultiCropConfig(**{**plain.__dict__, "cast_jitter": 0.2}), 3)
    assert any(isinstance(t, ChannelGain) for t in cast.local_tf.transforms)
    with pytest.raises(ValueError, match="cast_jitter"):
        MultiCropConfig(cast_jitter=1.5)


def test_background_mix_keeps_the_centre_and_takes_the_sides_from_another_crop(tmp_path):
    from PIL import Image

    from personsearch.data.multicrop import MultiCropDataset, mix_background

    red, blue = Image.new("RGB", (32, 64), (255, 0, 0)), Image.new("RGB", (16, 32), (0, 0, 255))
    mixed = mix_background(red, blue, 0.5)
    assert mixed.size == (32, 64)
    assert [mixed.getpixel((x, 10)) for x in (0, 7, 8, 23, 24, 31)] == [(0, 0, 255)] * 2 + [(255, 0, 0)] * 2 + [
        (0, 0, 255)] * 2
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (32, 64), colour).save(paths[-1])
    plain = dict(height=64, width=32, color_jitter=(0, 0, 0, 0), grayscale=0.0, solarize=0.0, global_scale=(1.0, 1.0))
    mixing = MultiCropDataset(paths, MultiCrop(MultiCropConfig(**plain, background_mix=1.0), 3))
    views = mixing[0]["views"]
    for view in views[:2]:  # both globals: the other crop's green sides, its own red centre
        assert view[1, 32, 2] > view[0, 32, 2] and view[0, 32, 16] > view[1, 32, 16]
    for view in views[2:]:  # locals keep their own background
        assert view[0].mean() > view[1].mean()
    untouched = MultiCropDataset(paths, MultiCrop(MultiCropConfig(**plain), 3))[0]["views"][0]
    assert untouched[0, 32, 2] > untouched[1, 32, 2]
    with pytest.raises(ValueError, match="background_mix"):
        MultiCropConfig(background_mix=2.0)


def test_pass_pairs_match_pass_s_44_terms():
    layout = ViewLayout(2, (0, 0, 0, 1, 1, 1, 2, 2, 2), 3)
    pairs = pass_pairs(layout)
    assert len(pairs) == 44
    cls = [(g, v) for t, g, v in pairs if t == 0]
    assert len(cls) == 20 and all(g != v for g, v in cls)  # every other view, never itself
    for k in range(3):
        part = sorted((g, v) for t, g, v in pairs if t == k + 1)
        locals_k = [2 + 3 * k + i for i in range(3)]
        assert part == sorted([(0, 1), (1, 0)] + [(g, v) for g in (0, 1) for v in locals_k])
    assert len(pass_pairs(ViewLayout(2, (None,) * 9, 0))) == 20  # DINO: [CLS] only


def test_self_distillation_loss_against_a_hand_computed_value():
    s = {(0, 0): torch.tensor([[1.0, 0.0]]), (0, 1): torch.tensor([[0.0, 2.0]])}
    t = {(0, 0): torch.tensor([[0.2, 0.0]]), (0, 1): torch.tensor([[0.0, 0.1]])}
    centers = torch.tensor([[0.1, 0.0]])
    pairs = [(0, 0, 1), (0, 1, 0)]
    got = self_distillation_loss(s, t, centers, pairs, student_temp=0.5, teacher_temp=0.1)

    def ce(teacher, student):
        q = [math.exp((teacher[i] - [0.1, 0.0][i]) / 0.1) for i in range(2)]
        q = [x / sum(q) for x in q]
        z = [x / 0.5 for x in student]
        log_norm = math.log(sum(math.exp(x) for x in z))
        return -sum(q[i] * (z[i] - log_norm) for i in range(2))

    want = (ce([0.2, 0.0], [0.0, 2.0]) + ce([0.0, 0.1], [1.0, 0.0])) / 2
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_target_shift_pairs_each_image_with_another_images_teacher():
    gen = torch.Generator().manual_seed(0)
    s = {(0, v): torch.randn(3, 5, generator=gen) for v in range(2)}
    t = {(0, g): torch.randn(3, 5, generator=gen) for g in range(2)}
    centers, pairs = torch.zeros(1, 5), [(0, 0, 1), (0, 1, 0)]
    same = self_distillation_loss(s, t, centers, pairs)
    shifted = self_distillation_loss(s, t, centers, pairs, target_shift=1)
    rolled = {key: torch.roll(x, -1, dims=0) for key, x in t.items()}  # row i now holds image i + 1's teacher
    assert shifted.item() == pytest.approx(self_distillation_loss(s, rolled, centers, pairs).item(), rel=1e-6)
    assert shifted.item() != pytest.approx(same.item(), rel=1e-3)
    with pytest.raises(ValueError, match="with itself"):
        self_distillation_loss(s, t, centers, pairs, target_shift=3)
    with pytest.raises(ValueError, match="loss.target_shift 4 .* data.batch_size 4"):
        load_recipe_config("pass", ["data.batch_size=4", "loss.target_shift=4"])


def test_centers_are_an_ema_of_teacher_batch_means():
    centers = TokenCenters(tokens=2, out_dim=3, momentum=0.9)
    centers.update({1: torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])})
    assert torch.allclose(centers.center[1], torch.tensor([0.2, 0.2, 0.2]))
    assert torch.equal(centers.center[0], torch.zeros(3))  # a token not in the batch keeps its centre


def test_frozen_prototype_layer_gets_no_gradient_but_the_mlp_does():
    torch.manual_seed(0)
    head = DinoHead(8, out_dim=16, hidden_dim=12, bottleneck_dim=4)
    out = head(torch.randn(5, 8), freeze_last=True)
    assert out.shape == (5, 16) and out.abs().max() <= 1.0 + 1e-5  # cosines to unit prototypes
    out.square().sum().backward()
    assert head.prototypes.grad is not None and head.prototypes.grad.abs().max() == 0
    assert head.mlp[0].weight.grad.abs().max() > 0
    head.zero_grad()
    head(torch.randn(5, 8)).square().sum().backward()
    assert head.prototypes.grad.abs().max() > 0


def _pass_config(tiny_synth, work, *extra):
    return load_recipe_config("pass", [*smoke_overrides("pass", tiny_synth, work, "cpu", "none"),
                                       "engine.max_iters_per_epoch=2", "engine.epochs=2", *extra])


def test_teacher_is_the_ema_of_the_student_and_centres_move(tiny_synth, tmp_path):
    cfg = _pass_config(tiny_synth, tmp_path, "engine.epochs=1", "engine.ema_momentum=0.5", "engine.ema_momentum_end=0.5")
    recipe = build_recipe(cfg, tmp_path)
    torch.manual_seed(0)
    model = recipe.build_model()
    before = {k: v.clone() for k, v in model.teacher.net.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in model.student.state_dict().items())  # starts equal
    batch = next(iter(recipe.build_train_loader(0, 1, 0)))
    loss, logs = recipe.training_step(model, batch, epoch=1)
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())  # gradients reach the student only
    assert model.centers.center.abs().sum() > 0 and 0 < logs["teacher_entropy"] <= 1
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
    from personsearch.engine.recipe import StepInfo

    recipe.after_step(model, StepInfo(0, 0, 0, 1, 1e-3, 0.04, 0.5))
    for name, param in model.teacher.net.named_parameters():
        want = 0.5 * before[name] + 0.5 * dict(model.student.named_parameters())[name]
        assert torch.allclose(param, want, atol=1e-6), name


def test_pretraining_resumes_bit_identically_with_its_teacher_and_centres(tiny_synth, tmp_path):
    """A run stopped after epoch 1 (its epoch-2 checkpoint and final weights gone) resumes to the same bits."""
    import shutil

    cfg = _pass_config(tiny_synth, tmp_path)
    straight = tmp_path / "straight"
    straight.mkdir()
    save_run_config(straight, cfg)
    ref = train(build_recipe(cfg, straight), cfg.engine, straight)
    split = tmp_path / "split"
    shutil.copytree(straight, split)
    (split / "checkpoints" / "epoch_0002.pt").unlink()
    (split / "model_final.pt").unlink()
    resumed = train(build_recipe(cfg, split), cfg.engine, split, resume=True)
    want, got = ref.model.state_dict(), resumed.model.state_dict()
    assert set(want) == set(got) and any(k.startswith("teacher.") for k in got) and "centers.center" in got
    for key in want:
        assert torch.equal(want[key], got[key]), key
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in ref.history]


def test_finetuning_starts_from_the_pretrained_teacher_backbone(tiny_synth, tmp_path):
    from personsearch.methods.smoke import smoke_recipe

    pre = tmp_path / "pass"
    smoke_recipe("pass", tiny_synth, pre, device="cpu")
    cfg = load_recipe_config("pass_reid", [*smoke_overrides("pass_reid", tiny_synth, tmp_path, "cpu", "none"),
                                           f"model.weights={pre}"])
    model = build_recipe(cfg, tmp_path).build_model()
    saved = torch.load(pre / "model_final.pt", weights_only=False)["model"]
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, saved[f"teacher.net.backbone.{key}"]), key
    wrong = load_recipe_config("pass_reid", [*smoke_overrides("pass_reid", tiny_synth, tmp_path, "cpu", "none"),
                                             f"model.weights={pre}", "model.num_parts=0"])
    with pytest.raises(ValueError, match="model.num_parts=3"):
        build_recipe(wrong, tmp_path).build_model()


def test_ablation_runs_are_trained_once_then_reused(tiny_synth, tmp_path):
    """The ablation scripts' helper: a finished run is read back, not retrained."""
    from personsearch.methods.runs import train_or_reuse

    overrides = [*smoke_overrides("dino", tiny_synth, tmp_path, "cpu", "none"), "engine.max_iters_per_epoch=1",
                 "engine.epochs=1", "engine.progress=false"]
    first = train_or_reuse("dino", overrides, tmp_path / "dino")
    assert "mAP" in first and first["train_minutes"] >= 0
    stamp = (tmp_path / "dino" / "model_final.pt").stat().st_mtime_ns
    assert train_or_reuse("dino", overrides, tmp_path / "dino") == first
    assert (tmp_path / "dino" / "model_final.pt").stat().st_mtime_ns == stamp


def test_gain_split_mixes_stem_and_transformer_from_the_right_sources():
    """benchmarks/pass_gain_split.py: the `transformer` row keeps everything pre-trained but the
    MobileNetV2 body; the `stem` row takes the whole stem (body with its statistics, projection)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "pass_gain_split.py"
    spec = importlib.util.spec_from_file_location("pass_gain_split", script)
    split = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(split)
    torch.manual_seed(0)
    pre, fresh = (PartTokenViT("vit_tiny", (64, 32), num_parts=3, depth=1, stem="mobilenetv2",
                               stem_pretrained=False).state_dict() for _ in range(2))
    rows = split.split_states(pre, fresh)
    for name, row in rows.items():
        assert set(row) == set(fresh), name
    body, proj = "vit.patch_embed.body.0.1.running_var", "vit.patch_embed.proj.weight"
    assert rows["transformer"][body] is fresh[body] and rows["transformer"][proj] is pre[proj]
    assert rows["transformer"]["part_tokens"] is pre["part_tokens"]
    assert rows["stem"][body] is pre[body] and rows["stem"][proj] is pre[proj]
    assert rows["stem"]["part_pos"] is fresh["part_pos"]
    with pytest.raises(ValueError, match="differ in keys"):
        split.split_states({**pre, "extra": torch.zeros(1)}, fresh)
