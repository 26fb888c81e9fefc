"""The compute versions documents (GET /compute/ and /compute/v2.1)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute import microversions
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts


def _v21(base: str) -> dict[str, Any]:
    return {"id": "v2.1", "status": "CURRENT", "version": str(microversions.MAX),
            "min_version": str(microversions.MIN), "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"},
                      {"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


@accepts()
async def index(req: ApiRequest) -> Reply:
    return Reply({"versions": [_v21(req.app.conf.public_url)]}, 200)


@accepts()
async def show(req: ApiRequest) -> Reply:
    return Reply({"version": _v21(req.app.conf.public_url)}, 200)
