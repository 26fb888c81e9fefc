"""Neutron's bulk creates ({"ports": [...]}, subnets, security group rules, networks):
at most MAX_BULK items, all made or none left behind (networks: in one transaction
of their own domain service)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from novalet.api.network.attributes import BadBody

LOG = logging.getLogger(__name__)

MAX_BULK = 100  # items one bulk POST may create

T = TypeVar("T")
R = TypeVar("R")


def items(body: Any, collection: str) -> list[Any]:
    """The request's list: 400 when it is not a non-empty list of at most MAX_BULK."""
    if not isinstance(body, list) or not body:
        raise BadBody(reason=f"'{collection}' must be a non-empty list of {collection}")
    if len(body) > MAX_BULK:
        raise BadBody(reason=f"'{collection}' has {len(body)} items; one request creates at "
                      f"most {MAX_BULK}: split it")
    return body


async def all_or_none(wanted: Sequence[T], make: Callable[[T], Awaitable[R]],
                      undo: Callable[[R], Awaitable[None]]) -> list[R]:
    """Make each in turn; on any failure, a cancellation too (the client went away),
    undo the ones made, shielded so a second cancellation can't stop it halfway."""
    made: list[R] = []
    try:
        for item in wanted:
            made.append(await make(item))
    except BaseException:
        await asyncio.shield(_undo(made, undo))
        raise
    return made


async def _undo(made: list[R], undo: Callable[[R], Awaitable[None]]) -> None:
    for item in made:
        try:
            await undo(item)
        except Exception:  # the others still go; this one is for an operator
            LOG.exception("Could not undo %r of a failed bulk create", item)
