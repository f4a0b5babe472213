"""HTTP hardening for the whole app (pure ASGI middleware, applied by ``api.app.create_app``):

* :class:`BodyLimit` — a request body larger than ``max_bytes`` gets 413 before the
  handler runs (``Content-Length`` checked up front; chunked bodies counted);
* :class:`SecurityHeaders` — ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer`` and a Content-Security-Policy (``default-src 'self'``,
  ``frame-ancestors 'none'``) on every response;
* CORS stays off unless ``cors_origins`` is configured (``api.app``).
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: the UI's own scripts only (no inline <script>, no CDN); inline style attributes are allowed
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CSP.encode()),
]
#: FastAPI's interactive docs pull their scripts from a CDN: no CSP there (prefer /openapi.json)
_NO_CSP = ("/docs", "/redoc")


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body larger than {self.max_bytes} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _reply(send, 400, "bad Content-Length")
                    return
                if length > self.max_bytes:
                    await _reply(send, 413, too_big)
                    return
        # count what actually arrives (chunked bodies, lying Content-Length): buffer up to the limit
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks_done = message
                break
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                await _reply(send, 413, too_big)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                chunks_done = None
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                if chunks_done is not None:
                    return chunks_done
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        skip_csp = scope.get("path", "").startswith(_NO_CSP)

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in HEADERS if k not in present and not (skip_csp and k == b"content-security-policy")]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


# ------------------------------------------------------------------ values the database cannot hold
#: the largest id any table stores (every primary key is a 32-bit ``Integer``); routes bound their
#: ids with it (``api.security.DbId``), and :func:`install_db_value_errors` catches the rest
DB_INT = 2**31 - 1


def is_db_value_error(exc: BaseException) -> bool:
    """A parameter the database refused as a value (not a bug, not an outage): SQLite's
    ``OverflowError`` for an integer over 64 bits, PostgreSQL's ``DataError`` (an integer out of
    int32/int64 range, a string too long for its column, a malformed number)."""
    if isinstance(exc, OverflowError):
        return "SQLite INTEGER" in str(exc) or "too large to convert" in str(exc)
    try:
        from sqlalchemy.exc import DataError, StatementError
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, DataError):
        return True
    if not isinstance(exc, StatementError):
        return False
    # asyncpg refuses a bind value client-side ("invalid input for query argument $1: … out of
    # int32 range"): SQLAlchemy wraps it in a plain DBAPIError whose cause is asyncpg's DataError
    for inner in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if isinstance(inner, OverflowError) or type(inner).__name__ == "DataError":
            return True
        if str(getattr(inner, "sqlstate", "") or "").startswith("22"):  # SQLSTATE class 22: data exception
            return True
    return False


def install_db_value_errors(app: Any) -> None:
    """A number or string the database cannot hold answers 422 (the field is named when the route
    bounded it, otherwise this generic answer), never 500 — whatever route forgot a bound."""
    from fastapi.responses import JSONResponse

    async def handler(request: Any, exc: Exception) -> Any:
        if not is_db_value_error(exc):
            raise exc
        return JSONResponse({"detail": "a value in the request is out of range for the database"}, status_code=422)

    from sqlalchemy.exc import DataError, StatementError

    for kind in (OverflowError, DataError, StatementError):
        app.add_exception_handler(kind, handler)
