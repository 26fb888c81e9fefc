"""The ports of a guest's SPICE display and serial port, and the record of where they listen.

QEMU picks a free VNC display by itself (`-vnc HOST:0,to=N`), but a SPICE
display or a TCP serial port needs a port on its command line. Those come
from [serial_console] port_range: a port no other guest of this host has
recorded and that can be bound now. The choice is written to the guest's
console.json before QEMU starts, under a lock, so two launches at once never
pick the same port; a port taken by some other program between the check and
QEMU's bind makes the launch fail, and the caller tries again with others.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import re
import socket
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.cmdline import ConsolePorts, HostSettings
from novalet.virt.qemu.layout import InstancePaths, write_atomic

PROXY_ADDRESS = {
    "vnc": ("vnc", "server_proxyclient_address"),
    "spice": ("spice", "server_proxyclient_address"),
    "serial": ("serial_console", "proxyclient_address"),
}
"""console kind -> the option naming the address the console proxies reach it on."""

PORT_KINDS = ("spice", "serial")
"""Displays whose ports come from the range (VNC's QEMU picks itself)."""


class InvalidPortRange(VirtDriverError):
    msg_fmt = ("[serial_console] port_range must be FIRST:LAST with "
               "1 <= FIRST <= LAST <= 65535, not %(value)r")


class NoFreePort(VirtDriverError):
    msg_fmt = ("No free port for the %(kind)s console of %(uuid)s in [serial_console] "
               "port_range %(first)d:%(last)d (other guests hold %(taken)d of them)")


def parse_range(value: str) -> tuple[int, int]:
    """'10000:20000' -> (10000, 20000); InvalidPortRange for anything else."""
    first, sep, last = value.strip().partition(":")
    try:
        low, high = int(first), int(last)
    except ValueError:
        raise InvalidPortRange(value=value) from None
    if not sep or not 1 <= low <= high <= 65535:
        raise InvalidPortRange(value=value)
    return low, high


def can_bind(host: str, port: int) -> bool:
    """Whether a listening socket could take host:port now (as QEMU binds it, with
    SO_REUSEADDR, so a port whose old connections linger in TIME_WAIT counts as free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise VirtDriverError(reason=f"cannot listen on {host} port {port} for a guest "
                                         f"console: {exc.strerror}") from None
    return True


def pick(wanted: Iterable[tuple[str, str]], first: int, last: int, taken: Collection[int],
         prefer: dict[str, int], is_free: Callable[[str, int], bool]) -> dict[str, int]:
    """A port per (kind, listen address) in wanted: the kind's preferred port when it is
    in range, not taken and free, else the lowest such port that is no other kind's
    preferred one. A kind for which no port is left is missing from the result."""
    chosen: dict[str, int] = {}
    for kind, host in wanted:
        used = set(taken) | set(chosen.values())
        head = [prefer[kind]] if kind in prefer else []
        others = {port for other, port in prefer.items() if other != kind}
        scan = (port for port in range(first, last + 1) if port not in others)
        for port in itertools.chain(head, scan):
            if first <= port <= last and port not in used and is_free(host, port):
                chosen[kind] = port
                break
    return chosen


def serial_port(chardevs: list[dict[str, Any]]) -> int | None:
    """The TCP port of the guest's serial0 chardev from query-chardev, whose filename
    reads 'tcp:HOST:PORT,server=on' (with a 'disconnected:' prefix or a
    ' <-> PEER' suffix); None when the serial port is a plain file."""
    for chardev in chardevs:
        if chardev.get("label") == "serial0":
            match = re.match(r"(?:disconnected:)?tcp:.*:(\d+),server", str(chardev["filename"]))
            return int(match.group(1)) if match else None
    return None


# --- the record --------------------------------------------------------------------------


def read_record(path: Path) -> dict[str, Any]:
    """console.json as a dict (empty when missing or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_ports(record: dict[str, Any]) -> dict[str, int]:
    """kind -> port of the range-given displays in a record."""
    ports: dict[str, int] = {}
    for kind in PORT_KINDS:
        entry = record.get(kind)
        if isinstance(entry, dict) and isinstance(entry.get("port"), int):
            ports[kind] = entry["port"]
    return ports


class PortAllocator:
    """Chooses and records the SPICE and serial ports of each launch of a guest."""

    def __init__(self, first: int, last: int,
                 is_free: Callable[[str, int], bool] | None = None) -> None:
        self.first = first
        self.last = last
        self.is_free = is_free or can_bind
        self._lock = asyncio.Lock()

    async def claim(self, paths: InstancePaths, host: HostSettings,
                    avoid: Collection[int] = ()) -> ConsolePorts:
        """Ports for the guest's next launch (its previous ones when still free),
        written to its console.json; none for a kind the host gives no guest."""
        wanted = [(kind, listen) for kind, listen in (("spice", host.spice_listen),
                                                        ("serial", host.serial_listen))
                  if listen]
        async with self._lock:
            own = recorded_ports(read_record(paths.console_record))
            if not wanted:
                paths.console_record.unlink(missing_ok=True)
                return ConsolePorts()
            taken = self._taken_by_others(paths) | set(avoid)
            prefer = {k: p for k, p in own.items() if p not in avoid}
            chosen = pick(wanted, self.first, self.last, taken, prefer, self.is_free)
            for kind, _ in wanted:
                if kind not in chosen:
                    raise NoFreePort(kind=kind, uuid=paths.uuid, first=self.first,
                                     last=self.last, taken=len(taken))
            listen = dict(wanted)
            write_atomic(paths.console_record, json.dumps(
                {kind: {"host": listen[kind], "port": port} for kind, port in chosen.items()}))
        return ConsolePorts(spice=chosen.get("spice"), serial=chosen.get("serial"))

    @staticmethod
    def _taken_by_others(paths: InstancePaths) -> set[int]:
        taken: set[int] = set()
        for entry in paths.dir.parent.iterdir():
            if entry.name != paths.uuid and entry.is_dir():
                taken.update(recorded_ports(read_record(entry / paths.console_record.name))
                             .values())
        return taken


def record_vnc(paths: InstancePaths, vnc: dict[str, Any] | None) -> None:
    """Add (or, with None, drop) where QEMU put the guest's VNC display to its record."""
    record = read_record(paths.console_record)
    record.pop("vnc", None)
    if vnc is not None:
        record["vnc"] = vnc
    if record:
        write_atomic(paths.console_record, json.dumps(record))
    else:
        paths.console_record.unlink(missing_ok=True)
