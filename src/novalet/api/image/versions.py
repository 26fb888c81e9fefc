"""Version discovery of the image API and the import-methods document."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply

CURRENT = 7
"""Highest v2 minor version served (2.7: hidden images and multihash); 2.0-2.6 are
listed as supported, as Glance lists every minor it still serves."""


def _versions(base: str) -> dict[str, Any]:
    href = f"{base}/image/v2/"
    return {"versions": [
        {"id": f"v2.{minor}", "status": "CURRENT" if minor == CURRENT else "SUPPORTED",
         "links": [{"rel": "self", "href": href}]}
        for minor in range(CURRENT, -1, -1)]}


async def index(req: ApiRequest) -> Reply:
    """Glance answers its root with 300 Multiple Choices and the version list."""
    return Reply(_versions(req.app.conf.public_url), 300)


async def listing(req: ApiRequest) -> Reply:
    return Reply(_versions(req.app.conf.public_url), 200)


async def import_info(req: ApiRequest) -> dict[str, Any]:
    """No interoperable import methods: images are uploaded with PUT .../file."""
    return {"import-methods": {"description": "Import methods available.",
                               "type": "array", "value": []}}
