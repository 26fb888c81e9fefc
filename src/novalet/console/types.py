"""The console types of the API and what each needs from the compute host.

A console type (Nova's name in the API and in tokens) belongs to one protocol
and is served by one kind of display on the compute host: the VNC display
(novnc, xvpvnc), the SPICE display (spice-html5) or the guest's serial port
(serial). rdp-html5 and webmks exist in the API for no hypervisor we drive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
class ConsoleTarget:
    """Where a guest's display listens, as a proxy on another host reaches it."""

    host: str
    port: int
    internal_access_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsoleTarget:
        return cls(str(data["host"]), int(data["port"]), data.get("internal_access_path"))
