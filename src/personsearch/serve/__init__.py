"""REST API and web page over a gallery index: ``create_app(index_path)``, run by ``personsearch serve``."""

from .app import DEFAULT_MAX_UPLOAD_BYTES, create_app

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app"]
