"""Metrics as pure functions over arrays: no model imports."""

from .reid import ReidResult, evaluate_reid

__all__ = ["ReidResult", "evaluate_reid"]
