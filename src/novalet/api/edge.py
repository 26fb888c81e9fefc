"""Limits every request meets before any handler or parser sees it (ASGI middleware).

- A body larger than its API's limit is refused with 413 and the connection is
  closed, so the rest is never read: at once when Content-Length says so, and
  after the limit when a chunked body goes past it (the limit is counted as the
  body streams in; nothing beyond it is buffered).
- A NUL byte in the path or the query string is a 400: no database stores it in
  text (PostgreSQL refuses it outright), and no name may hold one.

The limit of each API: compute, identity and the image API's JSON calls take
`[oslo_middleware] max_request_body_size` (Nova's and Keystone's option, 114688
bytes by default); image data uploads stream to disk and are bounded by
`[image] image_size_cap` instead (image/api.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novalet import exceptions
from novalet.api import errors
from novalet.common.context import new_request_id

LOG = logging.getLogger(__name__)

# Routes whose bodies stream and carry their own limit.
_STREAMED = re.compile(r"^/image/v2/images/[^/]+/file/?$")


class RequestTooLarge(exceptions.NovaletError):
    msg_fmt = "Request is too large. Larger than max_request_body_size (%(limit)d)."
    code = 413


class NulInRequest(exceptions.Invalid):
    msg_fmt = "NUL characters are not allowed in the %(where)s."


def body_limit(method: str, path: str, limit: int) -> int | None:
    """The most bytes a request's body may have, or None for a streamed upload."""
    if method == "PUT" and _STREAMED.match(path):
        return None
    return limit


class EdgeLimits:
    """ASGI middleware enforcing the body limit and refusing NUL in the URL."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        raw_path = scope.get("raw_path") or path.encode()
        if b"%00" in raw_path or "\x00" in path:
            await _refuse(send, path, NulInRequest(where="request path"))
            return
        if b"%00" in scope.get("query_string", b""):
            await _refuse(send, path, NulInRequest(where="query string"))
            return
        limit = body_limit(scope["method"], path, self.max_body)
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > limit:
            LOG.info("Refused %s %s: Content-Length %d is over the limit of %d bytes",
                     scope["method"], path, length, limit)
            await _refuse(send, path, RequestTooLarge(limit=limit))
            return
        await self.app(scope, _counting(receive, limit), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _counting(receive: Receive, limit: int) -> Receive:
    """`receive` that raises RequestTooLarge once the body passes `limit` bytes
    (the handler answers 413 and closes the connection: see handler.py)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                LOG.info("Refused a request body past the limit of %d bytes", limit)
                raise RequestTooLarge(limit=limit)
        return message

    return counted


async def _refuse(send: Send, path: str, exc: exceptions.NovaletError) -> None:
    """Answer without reading the body, and close the connection after the answer
    (uvicorn closes on `Connection: close`), so an unread body is never read."""
    request_id = new_request_id()
    body = orjson.dumps(errors.formatter_for(path)(exc.code, exc.message))
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close"),
                          (b"x-openstack-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": exc.code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
