"""Handlers for POST /servers/{id}/remote-consoles (2.6 on) and the server actions
it replaced, os-getVNCConsole, os-getSPICEConsole, os-getSerialConsole and
os-getRDPConsole (2.1 to 2.5; 404 from 2.6, as in Nova)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import remote_consoles as schemas
from novalet.api.handler import ApiRequest, VersionNotFound, require_version
from novalet.api.validation import accepts, resolve, validate
from novalet.compute.consoles import ConsoleTypeInvalid
from novalet.console.types import PROTOCOL_OF
from novalet.db.models import Instance
from novalet.policy import enforce

POLICY = "os_compute_api:os-remote-consoles"
FIRST = "2.6"  # remote-consoles appears, the actions go
# spice-direct (2.99) is a SPICE type no display of ours serves (ConsoleService says so).
_PROTOCOL_OF = {**PROTOCOL_OF, "spice-direct": "spice"}


async def _instance(req: ApiRequest) -> Instance:
    instance: Instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, POLICY, instance.project_id)
    return instance


@accepts(body=schemas.CREATE)
async def create(req: ApiRequest) -> dict[str, Any]:
    """A URL, carrying a new token, that opens the server's console of the given
    protocol and type."""
    require_version(req, FIRST)
    body = await req.json_object()
    validate(body, resolve(schemas.CREATE, req.at_least) or {})
    protocol, console_type = body["remote_console"]["protocol"], body["remote_console"]["type"]
    instance = await _instance(req)
    if _PROTOCOL_OF.get(console_type) != protocol:
        raise ConsoleTypeInvalid(console_type=console_type)
    url = await req.app.consoles.console_url(req.ctx, instance, console_type)
    return {"remote_console": {"protocol": protocol, "type": console_type, "url": url}}


async def get_console_action(req: ApiRequest, key: str, value: Any) -> dict[str, Any]:
    """One old os-get*Console action: {"console": {"type", "url"}}."""
    if req.at_least(FIRST):
        raise VersionNotFound()
    validate({key: value}, schemas.ACTION_BODIES[key])
    instance = await _instance(req)
    url = await req.app.consoles.console_url(req.ctx, instance, value["type"])
    return {"console": {"type": value["type"], "url": url}}


async def get_vnc_console(req: ApiRequest, value: Any) -> dict[str, Any]:
    return await get_console_action(req, "os-getVNCConsole", value)


async def get_spice_console(req: ApiRequest, value: Any) -> dict[str, Any]:
    return await get_console_action(req, "os-getSPICEConsole", value)


async def get_serial_console(req: ApiRequest, value: Any) -> dict[str, Any]:
    return await get_console_action(req, "os-getSerialConsole", value)


async def get_rdp_console(req: ApiRequest, value: Any) -> dict[str, Any]:
    """RDP consoles need Hyper-V, which no Novalet host is: always a 400."""
    return await get_console_action(req, "os-getRDPConsole", value)


# action key -> handler, for server_actions' table
ACTION_HANDLERS = {
    "os-getVNCConsole": get_vnc_console, "os-getSPICEConsole": get_spice_console,
    "os-getSerialConsole": get_serial_console, "os-getRDPConsole": get_rdp_console,
}
