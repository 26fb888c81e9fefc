"""The console types of the API and what each needs from the compute host.

A console type (Nova's name in the API and in tokens) belongs to one protocol
and is served by one kind of display on the compute host: the VNC display
(novnc, xvpvnc), the SPICE display (spice-html5) or the guest's serial port
(serial). rdp-html5 and webmks exist in the API for no hypervisor we drive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from novalet.rpc.models import BusModel

PROTOCOL_OF: dict[str, str] = {
    "novnc": "vnc", "xvpvnc": "vnc", "spice-html5": "spice", "serial": "serial",
    "rdp-html5": "rdp", "webmks": "mks"}
"""console type -> protocol, as POST /servers/{id}/remote-consoles pairs them."""

DISPLAY_OF: dict[str, str] = {
    "novnc": "vnc", "xvpvnc": "vnc", "spice-html5": "spice", "serial": "serial"}
"""console type -> the display of the guest (ComputeDriver.get_console's `kind`)
it opens; the types missing here no driver of ours can serve."""

NATIVE_VNC = "xvpvnc"
"""The type whose token is a native VNC client's password (8 characters at most)."""


@dataclass(frozen=True)
class ConsoleTarget(BusModel):
    """Where a guest's display listens, as a proxy on another host reaches it: what
    a compute host answers get_console with (compute RPC 1.2; before, the same
    fields untagged, read as 1.0)."""

    VERSION: ClassVar[str] = "1.0"
    CHECKED: ClassVar[bool] = True  # a compute host's answer
    host: str
    port: int
    internal_access_path: str | None = None


@dataclass(frozen=True)
class Authorization(BusModel):
    """What a valid console token opens: the conductor's answer to a proxy's check
    (conductor RPC 1.3; before, the same fields untagged, read as 1.0)."""

    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    console_type: str
    compute_host: str
    target: ConsoleTarget
