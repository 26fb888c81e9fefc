"""Identity version discovery (GET /identity/ and /identity/v3)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply

VERSION = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"


def _v3(public_url: str) -> dict[str, Any]:
    return {"id": VERSION, "status": "stable", "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{public_url}/identity/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v3+json"}]}


async def index(req: ApiRequest) -> Reply:
    """Keystone answers the unversioned URL with 300 Multiple Choices."""
    return Reply({"versions": {"values": [_v3(req.app.conf.public_url)]}}, 300)


async def show(req: ApiRequest) -> Reply:
    return Reply({"version": _v3(req.app.conf.public_url)}, 200)
