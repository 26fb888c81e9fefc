"""Handler for /os-floating-ip-pools (a proxy API: 404 from 2.36)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.proxy import require_proxy_version
from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.policy import enforce


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-floating-ip-pools")
    pools = await req.app.network.floating_ip_pools()
    return {"floating_ip_pools": [{"name": name} for name in pools]}
