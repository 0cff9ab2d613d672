"""The one error type every dataset reader raises: it names the file and the field."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """Bad dataset input. ``str(err)`` reads ``<path>: <field>: <problem>``."""

    def __init__(self, path: str | Path, problem: str, field: str | None = None) -> None:
        self.path = Path(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: {field}" if field else f"{self.path}"
        super().__init__(f"{where}: {problem}")


def require_file(path: Path, what: str = "file") -> Path:
    """Return ``path`` if it is an existing file, else raise a DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(path, f"missing {what}")
    return path


def require_dir(path: Path, what: str = "folder") -> Path:
    """Return ``path`` if it is an existing directory, else raise a DatasetError naming it."""
    if not path.is_dir():
        raise DatasetError(path, f"missing {what}")
    return path
