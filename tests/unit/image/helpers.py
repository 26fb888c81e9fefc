"""Contexts and byte streams the image unit tests build requests from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from novalet.common.context import RequestContext


def project(name: str) -> RequestContext:
    return RequestContext(user_id=f"user-{name}", project_id=name, roles=["member", "reader"])


def admin() -> RequestContext:
    return RequestContext(user_id="user-admin", project_id="admin",
                          roles=["admin", "member", "reader"])


async def stream(blocks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block
