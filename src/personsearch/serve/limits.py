"""Request body limits as a pure ASGI middleware: 413 before or while the body is read, 408 when
the body does not arrive in time (a stalled upload does not hold a worker open)."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


DEFAULT_BODY_TIMEOUT_S = 60.0


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB"


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a JSON 413.

    The Content-Length header is checked first, and the bytes are counted as they arrive too (a
    chunked body has no header, and a header can lie), so no more than ``max_bytes`` plus one
    chunk is ever read. Whatever the app was about to answer is replaced by the 413. A body not
    complete within ``timeout_s`` seconds of the request's start is answered 408 likewise.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.timeout_s = float(timeout_s)

    def _message(self, size: str) -> bytes:
        detail = (f"the request body ({size}) is larger than the server's upload limit of "
                  f"{_megabytes(self.max_bytes)} ({self.max_bytes} bytes); send a smaller image "
                  "or start the server with a larger --max-upload-mb")
        return json.dumps({"detail": detail}).encode()

    async def _send_413(self, send: Send, size: str) -> None:
        await self._send_error(send, 413, self._message(size))

    async def _send_408(self, send: Send) -> None:
        detail = (f"the request body did not arrive within {self.timeout_s:g} s (--body-timeout); "
                  "the upload stalled or the connection is too slow")
        await self._send_error(send, 408, json.dumps({"detail": detail}).encode())

    @staticmethod
    async def _send_error(send: Send, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"content-length")
        if header is not None and header.isdigit() and int(header) > self.max_bytes:
            await self._send_413(send, f"{int(header)} bytes")
            return
        state = {"received": 0, "exceeded": False, "started": False, "timeout": False, "done": False}
        deadline = time.monotonic() + self.timeout_s

        async def counting_receive() -> Message:
            if state["done"]:  # the body is complete: waiting now is for a disconnect, not bounded
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                state["timeout"] = True
                raise _BodyTimeout() from None
            if message["type"] == "http.request":
                state["done"] = not message.get("more_body", False)
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["exceeded"] = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if (state["exceeded"] or state["timeout"]) and not state["started"]:
                return  # the app's answer to a body it could not finish reading: replaced below
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not (state["exceeded"] or state["timeout"]):
                raise
        if state["exceeded"] and not state["started"]:
            await self._send_413(send, f"more than {self.max_bytes} bytes")
        elif state["timeout"] and not state["started"]:
            await self._send_408(send)
