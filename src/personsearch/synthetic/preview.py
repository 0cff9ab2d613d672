"""A contact sheet of a generated benchmark, read back through the dataset readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.coco import read_coco_persons
from ..data.cuhk_sysu import read_cuhk_sysu
from ..data.folder import list_images
from ..data.market1501 import read_market1501
from ..data.prw import read_prw
from ..data.records import UNLABELED, SceneAnnotation

CROP = (48, 96)
SCENE_H = 180
BG = (245, 245, 245)


def _market_rows(root: Path, identities: int = 8, per_id: int = 8) -> list[Image.Image]:
    data = read_market1501(root)
    by_pid: dict[int, list] = {}
    for sample in data.query + data.gallery:
        if sample.pid > 0:
            by_pid.setdefault(sample.pid, []).append(sample)
    rows = []
    for pid in sorted(by_pid)[:identities]:
        samples = sorted(by_pid[pid], key=lambda s: (s.camid, s.path.name))[:per_id]
        row = Image.new("RGB", (per_id * (CROP[0] + 2), CROP[1] + 14), BG)
        draw = ImageDraw.Draw(row)
        for i, sample in enumerate(samples):
            row.paste(Image.open(sample.path).convert("RGB").resize(CROP), (i * (CROP[0] + 2), 14))
            draw.text((i * (CROP[0] + 2) + 2, 1), f"{pid} c{sample.camid + 1}", fill=(0, 0, 0))
        rows.append(row)
    return rows


def _scene_tile(scene: SceneAnnotation) -> Image.Image:
    image = Image.open(scene.path).convert("RGB")
    scale = SCENE_H / image.height
    image = image.resize((round(image.width * scale), SCENE_H))
    draw = ImageDraw.Draw(image)
    for box, pid in zip(np.asarray(scene.boxes).reshape(-1, 4) * scale, scene.pids):
        color = (230, 140, 0) if pid == UNLABELED else (0, 200, 0)
        draw.rectangle(box.tolist(), outline=color, width=2)
        if pid != UNLABELED:
            draw.text((box[0] + 2, box[1] + 2), str(int(pid)), fill=color)
    return image


def _scene_row(scenes: list[SceneAnnotation], count: int = 3) -> Image.Image:
    tiles = [_scene_tile(s) for s in scenes[:count]]
    row = Image.new("RGB", (sum(t.width + 4 for t in tiles) or 1, SCENE_H), BG)
    x = 0
    for tile in tiles:
        row.paste(tile, (x, 0))
        x += tile.width + 4
    return row


def _crop_row(paths: list[Path], count: int = 16) -> Image.Image:
    row = Image.new("RGB", (count * (CROP[0] + 2), CROP[1]), BG)
    for i, path in enumerate(paths[:count]):
        row.paste(Image.open(path).convert("RGB").resize(CROP), (i * (CROP[0] + 2), 0))
    return row


def write_preview(out: str | Path, path: str | Path | None = None) -> Path:
    """Write a PNG contact sheet of whatever outputs exist under ``out``; returns its path."""
    out = Path(out)
    sections: list[tuple[str, list[Image.Image]]] = []
    if (out / "market1501").is_dir():
        sections.append(("market1501: test identities across cameras (one row per identity)",
                         _market_rows(out / "market1501")))
    if (out / "cuhk_sysu").is_dir():
        sections.append(("cuhk_sysu: train scenes (green = labeled identity, orange = unlabeled)",
                         [_scene_row(read_cuhk_sysu(out / "cuhk_sysu").train)]))
    if (out / "prw").is_dir():
        sections.append(("prw: train frames", [_scene_row(read_prw(out / "prw").train)]))
    coco = out / "detection" / "annotations" / "instances_person.json"
    if coco.is_file():
        sections.append(("detection (COCO): persons without identities",
                         [_scene_row(read_coco_persons(coco, out / "detection" / "images").images)]))
    if (out / "unlabeled").is_dir():
        sections.append(("unlabeled crops (self-supervised pre-training)", [_crop_row(list_images(out / "unlabeled"))]))
    if not sections:
        raise FileNotFoundError(f"{out}: no synthetic benchmark outputs found")
    width = max(img.width for _, rows in sections for img in rows) + 20
    height = sum(22 + sum(img.height + 4 for img in rows) for _, rows in sections) + 10
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = 6
    for title, rows in sections:
        draw.text((10, y), title, fill=(20, 20, 120))
        y += 18
        for img in rows:
            sheet.paste(img, (10, y))
            y += img.height + 4
        y += 4
    target = Path(path) if path else out / "preview.png"
    sheet.save(target)
    return target
