"""Handler for GET /os-console-auth-tokens/{console_token}: where an unexpired console
token leads (admins only)."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.policy import enforce

POLICY = "os_compute_api:os-console-auth-tokens"
ALL_TYPES = "2.31"  # below it Nova showed rdp-html5 tokens only


class ConsoleDetailsNeedNewerVersion(exceptions.Invalid):
    msg_fmt = ("Console token details are shown from microversion 2.31 on; below it "
               "only for rdp-html5 consoles, which this cloud does not serve.")


class ConsoleTokenNotFound(exceptions.NotFound):
    msg_fmt = "Token not found"


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    """The instance and display address an unexpired token opens."""
    # Nova answers 400 below 2.31 (before policy) since rdp-html5 consoles went away.
    if not req.at_least(ALL_TYPES):
        raise ConsoleDetailsNeedNewerVersion()
    enforce(req.ctx, POLICY)
    row = await req.app.consoles.auth.show(req.path["console_token"])
    if row is None:
        raise ConsoleTokenNotFound()
    return {"console": {"instance_uuid": row.instance_uuid, "host": row.host,
                        "port": row.port, "internal_access_path": row.internal_access_path}}
