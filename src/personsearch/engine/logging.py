"""Run logging on rank 0: metrics.jsonl (one JSON object per line) and TensorBoard (progress: utils.progress)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from ..utils.files import atomic_write_text


def jsonable(value: Any) -> Any:
    """Tensors / numpy arrays and scalars -> python numbers and lists, through dicts and lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if callable(getattr(value, "tolist", None)):
        return value.tolist()
    return value


def rewind_jsonl(path: str | Path, step: int, epoch: int) -> None:
    """Keep only the records of a resumed run's past: iteration records with ``step`` < ``step``
    and eval records with ``epoch`` < ``epoch``; a torn last line (killed writer) is dropped."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if ("step" in record and record["step"] < step) or ("step" not in record and record.get("epoch", 0) < epoch):
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


class MetricLogger:
    """Appends records to ``out_dir/metrics.jsonl`` and mirrors numbers to TensorBoard.

    Build it on rank 0 only. ``start_step`` > 0 means a resume: the JSONL is rewound to that point
    and TensorBoard purges events at or after it, so curves have no duplicated stretch.
    """

    def __init__(self, out_dir: str | Path, tensorboard: bool = True, start_step: int = 0, start_epoch: int = 0):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / "metrics.jsonl"
        if start_step > 0 or start_epoch > 0:
            rewind_jsonl(self.path, start_step, start_epoch)
        else:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:  # tensorboard is a declared dependency, but stay usable without it
                warnings.warn(f"TensorBoard logging disabled: {err}", RuntimeWarning, stacklevel=2)
            else:
                self.writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=start_step or None)

    def log(self, record: dict[str, Any], tb_prefix: str = "train", tb_step: int | None = None) -> None:
        """Write one JSON line; numeric top-level values (and nested ``eval`` values) go to TB."""
        record = jsonable(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.writer is None or tb_step is None:
            return
        flat = record.get("eval", {}) if "eval" in record else record
        prefix = "eval" if "eval" in record else tb_prefix
        for key, value in flat.items():
            if key not in ("epoch", "iter", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    self.writer.add_scalar(f"{prefix}/{key}", value, tb_step)

    def close(self) -> None:
        """Flush and close the JSONL file and the TensorBoard writer."""
        self._file.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
