"""Who may talk to the server: a Host allow-list (against DNS rebinding) and a same-origin check of
state-changing requests (against cross-site form posts), as one pure ASGI middleware.

A browser page on another site can POST a multipart form to a server on loopback without any CORS
preflight, and a rebinding domain can make the browser send its own name as ``Host``. So: requests
whose ``Host`` is not an allowed name get a 400, and POST/PUT/PATCH/DELETE requests that carry an
``Origin`` (browsers always send it on such requests) other than the server's own origin or an
allowed one get a 403. Requests without ``Origin`` (curl, scripts) are not browsers' and pass.
"""

from __future__ import annotations

import json
from typing import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(value: str) -> str | None:
    """The host name of a ``Host`` header value (port and IPv6 brackets removed, lower case);
    None if it is not a well-formed host."""
    value = value.strip().lower()
    if not value or any(c in value for c in "/\\@ ?#"):
        return None
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1:] if end > 0 else "x"
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return value[1:end]
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, default ports dropped; ValueError if not an origin."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"not an origin (bad port): {origin!r}") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class RequestGuard:
    """Refuse requests for other host names (400) and cross-origin writes (403), with a JSON detail.

    ``allowed_hosts``: host names served (default: the loopback names); ``"*"`` serves any.
    ``allowed_origins``: origins besides the server's own that may POST (``"*"``: any).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
                 allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        hosts = [h.strip().lower() for h in allowed_hosts]
        self.any_host = "*" in hosts
        self.hosts = {host_name(h) or h for h in hosts if h != "*"}
        origins = [o.strip() for o in allowed_origins]
        self.any_origin = "*" in origins
        self.origins = {normalise_origin(o) for o in origins if o != "*"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get(b"host", "")
        name = host_name(host)
        if not self.any_host and name not in self.hosts:
            shown = host if len(host) <= 80 else host[:80] + "..."
            await _refuse(send, 400, f"Host '{shown}' is not served here (allowed: {', '.join(sorted(self.hosts))}); "
                                     "start the server with --allow-host NAME to serve another name")
            return
        origin = headers.get(b"origin")
        if origin is not None and scope.get("method", "GET") in UNSAFE_METHODS and not self._origin_ok(origin, host,
                                                                                                   scope):
            await _refuse(send, 403, f"cross-origin request from '{origin[:80]}' refused: this server only accepts "
                                     "changes from its own pages (start it with --allow-origin ORIGIN to allow one)")
            return
        await self.app(scope, receive, send)

    def _origin_ok(self, origin: str, host: str, scope: Scope) -> bool:
        if self.any_origin:
            return True
        try:
            given = normalise_origin(origin)
        except ValueError:
            return False  # "null" (sandboxed pages, file://) and garbage
        scheme = scope.get("scheme", "http")
        try:
            own = normalise_origin(f"{scheme}://{host}")
        except ValueError:
            own = None
        return given == own or given in self.origins


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
