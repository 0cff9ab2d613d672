"""``create_app(index_path)``: the FastAPI application serving the REST API and the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..pipelines import Searcher
from .budget import DEFAULT_PIXEL_BUDGET, PixelBudget
from .contract import closed_forms
from .guards import LOOPBACK_HOSTS, RequestGuard
from .limits import DEFAULT_BODY_TIMEOUT_S, BodyLimitMiddleware
from .routes import router
from .service import SearchService
from .uploads import MAX_IMAGE_PIXELS, ApiError

DEFAULT_MAX_UPLOAD_BYTES = 20 * 2**20
STATIC = Path(__file__).parent / "static"
DESCRIPTION = """Search an index of people seen in images and videos by example: upload an image of the
person (and the box around them), or name a person already indexed by id, and get the most similar
indexed people with their images. Every error is answered as `{"detail": "<field>: message"}` with the
status listed under each route. The web page is at `/`; this documentation works offline (its assets
are served locally); the raw OpenAPI schema is at `/openapi.json`."""


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "request"


async def _validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
    errors = jsonable_encoder(err.errors(), exclude={"input", "ctx", "url"})
    detail = "; ".join(f"{_field(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in errors)
    return JSONResponse({"detail": detail or "invalid request", "errors": errors}, status_code=422)


async def _api_error(_: Request, err: ApiError) -> JSONResponse:
    return JSONResponse({"detail": err.message}, status_code=err.status)


async def _method_not_allowed(request: Request, _: Exception) -> JSONResponse:
    """405 whose ``Allow`` lists every method of the path (a path served by several routes, such as
    GET/POST/DELETE /api/adapt, would otherwise name only the first route's)."""
    from starlette.routing import Match

    routes = [*router.routes, *(r for r in request.app.router.routes if getattr(r, "path", None) is not None)]
    methods = sorted({method for route in routes if route.matches(request.scope)[0] != Match.NONE
                      for method in getattr(route, "methods", None) or ()})
    return JSONResponse({"detail": f"method {request.method} not allowed here (allowed: {', '.join(methods)})"},
                        status_code=405, headers={"Allow": ", ".join(methods)})


def create_app(index_path: str | Path, searcher: Searcher | None = None, *,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, upload_dir: str | Path | None = None,
               max_image_pixels: int = MAX_IMAGE_PIXELS, pixel_budget: int = DEFAULT_PIXEL_BUDGET,
               allowed_hosts: Iterable[str] = LOOPBACK_HOSTS, allowed_origins: Iterable[str] = (),
               body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> FastAPI:
    """The app over the index at ``index_path``.

    ``searcher``: the pipeline that embeds queries and added images (default: the model the index
    was built with, ``index.load_searcher()``). ``max_upload_bytes``: larger request bodies get a 413.
    ``upload_dir``: where added images are kept (default: ``uploads/`` inside the index folder).
    ``max_image_pixels``: larger images (declared size) get a 413 before they are decoded.
    ``pixel_budget``: decoded pixels the whole server holds at once; requests wait for their share.
    ``allowed_hosts``: ``Host`` names served (400 otherwise; ``"*"`` any); ``allowed_origins``:
    origins besides the server's own that may POST (403 otherwise). ``body_timeout_s``: a request
    body not received in that time gets a 408.
    """
    if max_image_pixels < 1 or pixel_budget < max_image_pixels:
        raise ValueError(f"need 1 <= max_image_pixels <= pixel_budget, got {max_image_pixels} and {pixel_budget}")
    from ..index import PersonIndex

    index = PersonIndex.open(index_path)
    own = searcher is None
    if own:
        searcher = index.load_searcher()
    folder = Path(upload_dir) if upload_dir is not None else Path(index_path) / "uploads"
    app = FastAPIOffline(title="personsearch", version=__version__, description=DESCRIPTION,
                         static_url="/docs-assets")
    app.state.service = SearchService(index, searcher, folder, max_upload_bytes, budget=PixelBudget(pixel_budget),
                                      max_image_pixels=max_image_pixels, own_searcher=own)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_upload_bytes, timeout_s=body_timeout_s)
    app.add_middleware(RequestGuard, allowed_hosts=list(allowed_hosts), allowed_origins=list(allowed_origins))
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(405, _method_not_allowed)
    app.include_router(router)
    app.openapi = closed_forms(app.openapi)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
