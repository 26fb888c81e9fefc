"""What Nova's network proxy APIs share: their end at microversion 2.36 and bodies
that may be left out."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, VersionNotFound

PROXY_REMOVED = "2.36"


def require_proxy_version(req: ApiRequest) -> None:
    """os-networks, os-floating-ips, os-floating-ip-pools, os-security-groups,
    os-security-group-rules and os-fixed-ips answer 404 from 2.36 on, as Nova's do."""
    if req.at_least(PROXY_REMOVED):
        raise VersionNotFound()


async def optional_json(req: ApiRequest) -> Any:
    """The JSON body, or None when there is none (these handlers check it themselves)."""
    data = await req.raw.body()
    return await req.json() if data.strip() else None
