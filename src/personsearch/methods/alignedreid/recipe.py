"""AlignedReID: global + aligned local stripe features, batch-hard triplet, optional mutual learning.

With ``aligned.models >= 2`` several networks train together in one process: each gets its own ID,
global and local triplet losses, plus mutual terms towards its partners (held with zero gradient).
The first network is the one evaluated and exported.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...distance import distance_matrix, local_distance
from ...engine import unwrap_model
from ...losses.aligned import aligned_triplet_losses
from ...losses.mutual import mutual_losses
from ...models.aligned import build_aligned_model
from ..reid_common.evaluate import extract_split_features, metrics_from_distances
from ..reid_common.recipe import ReidRecipe
from .config import AlignedRecipeConfig


class ModelGroup(nn.ModuleList):
    """Networks trained together. Training forward: a list of output dicts; eval: the first's embedding."""

    def forward(self, x: torch.Tensor):
        if self.training:
            return [member(x) for member in self]
        return self[0](x)


class LocalFeatures(nn.Module):
    """Eval-time view of an aligned model returning flattened local features (B, stripes * dim)."""

    def __init__(self, model: nn.Module, normalize: bool) -> None:
        super().__init__()
        self.model, self.normalize = model, normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.model.embed_with_local(x)[1]
        return (F.normalize(local, dim=-1) if self.normalize else local).flatten(1)


class AlignedReidRecipe(ReidRecipe):
    """AlignedReID (Zhang et al. 2017) on the shared ReID parts."""

    CONFIG = AlignedRecipeConfig

    def build_model(self) -> nn.Module:
        m, a = self.cfg.model, self.cfg.aligned
        nets = [build_aligned_model(m.backbone, self.num_classes, stripes=a.stripes, local_dim=a.local_dim,
                                    weights=m.weights, last_stride=m.last_stride, pooling=m.pooling, neck=m.neck,
                                    embed_dim=m.embed_dim, img_size=(self.cfg.data.height, self.cfg.data.width))
                for _ in range(a.models)]
        return ModelGroup(nets) if a.models > 1 else nets[0]

    def training_step(self, model: nn.Module, batch: dict, epoch: int):
        a, loss_cfg = self.cfg.aligned, self.cfg.loss
        pids = batch["pids"]
        outputs = model(batch["images"])
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for out in outputs:
            out["local"] = F.normalize(out["local"].float(), dim=-1) if a.normalize_local else out["local"].float()
            out["global"] = out["global"].float()
            out["logits"] = out["logits"].float()
        mutual = None
        if len(outputs) > 1:
            mutual = mutual_losses(outputs, pids, use_local=a.local and a.mutual_local > 0, metric=a.mutual_metric,
                                   normalize=a.mutual_normalize)
        total, logs = 0.0, {}
        for i, out in enumerate(outputs):
            trip = aligned_triplet_losses(out["global"], out["local"], pids, margin=loss_cfg.margin,
                                          local_margin=a.local_margin, mining=a.mining)
            terms = {"id": loss_cfg.id_weight * F.cross_entropy(out["logits"], pids,
                                                                label_smoothing=loss_cfg.label_smoothing),
                     "global": loss_cfg.triplet_weight * trip["global"]}
            if a.local:
                terms["local"] = a.local_weight * trip["local"]
            if mutual is not None:
                weights = {"probability": a.mutual_probability, "global_distance": a.mutual_global,
                           "local_distance": a.mutual_local}
                terms.update({f"mutual_{k}": weights[k] * v for k, v in mutual[i].items() if weights[k] > 0})
            total = total + sum(terms.values())
            tag = "" if len(outputs) == 1 else f"m{i}_"
            logs.update({f"{tag}loss_{k}": v.item() for k, v in terms.items()})
            logs[f"{tag}acc"] = float((out["logits"].argmax(1) == pids).float().mean())
        return total, logs

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics for each test distance in ``eval.distances`` (suffix ``_local``, ``_global_local``)."""
        net = unwrap_model(model)
        net = net[0] if isinstance(net, ModelGroup) else net
        cfg, data, a = self.cfg.eval, self.cfg.data, self.cfg.aligned
        glob = dict(zip("qg", extract_split_features(net, self.dataset, data, cfg)))
        loc: dict[str, np.ndarray] = {}
        if {"local", "global+local"} & set(cfg.distances):
            feats = extract_split_features(LocalFeatures(net, a.normalize_local), self.dataset, data, cfg)
            loc = {k: f.reshape(len(f), a.stripes, a.local_dim) for k, f in zip("qg", feats)}

        def distance(name: str, x: str, y: str) -> np.ndarray:
            parts = []
            if name == "global":
                parts.append(distance_matrix(glob[x], glob[y], cfg.metric))
            if name == "global+local":  # the paper's sum: L2 between normalised globals, in [0, 2]
                parts.append(distance_matrix(glob[x], glob[y], "l2", normalize=True))
            if name in ("local", "global+local"):
                parts.append(np.asarray(local_distance(loc[x], loc[y]), np.float32))
            return sum(parts[1:], parts[0])

        metrics: dict[str, float] = {}
        for i, name in enumerate(cfg.distances):
            metrics.update(metrics_from_distances(
                distance(name, "q", "g"), self.dataset, cfg,
                dist_qq=lambda n=name: distance(n, "q", "q"), dist_gg=lambda n=name: distance(n, "g", "g"),
                report_dir=self.report_dir if i == 0 else None,
                suffix="" if name == "global" else "_" + name.replace("+", "_")))
        return metrics
