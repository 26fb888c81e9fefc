"""The compute versions documents: GET /compute/ lists v2.0 and v2.1; GET
/compute/v2.1/ and /compute/v2/ describe one each.

v2.0 is the legacy endpoint (api/compute/legacy_v2.py): the v2.1 API without
microversions. Nova lists it first and, since its 2025.2 release, as DEPRECATED
(it was SUPPORTED before); clients (Tempest among them) expect it there.
"""

from __future__ import annotations

from typing import Any

from novalet.api.compute import microversions
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts

_DOCS = {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}

# id -> (path under /compute, status, version, min_version, updated, media type)
_VERSIONS: dict[str, tuple[str, str, str, str, str, str]] = {
    "v2.0": ("v2", "DEPRECATED", "", "", "2025-07-04T12:00:00Z",
             "application/vnd.openstack.compute+json;version=2"),
    "v2.1": ("v2.1", "CURRENT", str(microversions.MAX), str(microversions.MIN),
             "2013-07-23T11:33:21Z", "application/vnd.openstack.compute+json;version=2.1"),
}


def _self_link(req: ApiRequest, version_id: str) -> dict[str, str]:
    path = _VERSIONS[version_id][0]
    return {"rel": "self", "href": f"{req.app.conf.public_url}/compute/{path}/"}


def _summary(req: ApiRequest, version_id: str) -> dict[str, Any]:
    """A version as the list shows it (its self link only, as Nova's list)."""
    _, status, version, min_version, updated, _ = _VERSIONS[version_id]
    return {"id": version_id, "status": status, "version": version,
            "min_version": min_version, "updated": updated,
            "links": [_self_link(req, version_id)]}


def document(req: ApiRequest, version_id: str) -> dict[str, Any]:
    """One version's own document, with its links and media type."""
    body = _summary(req, version_id)
    body["links"].append(dict(_DOCS))
    body["media-types"] = [{"base": "application/json", "type": _VERSIONS[version_id][5]}]
    return {"version": body}


@accepts()
async def index(req: ApiRequest) -> Reply:
    return Reply({"versions": [_summary(req, v) for v in sorted(_VERSIONS)]}, 200)


@accepts()
async def show(req: ApiRequest) -> Reply:
    return Reply(document(req, "v2.1"), 200)


@accepts()
async def show_v2(req: ApiRequest) -> Reply:
    return Reply(document(req, "v2.0"), 200)
