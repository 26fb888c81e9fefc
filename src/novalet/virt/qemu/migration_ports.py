"""Where this host takes incoming guests: its migration address and the ports of
[qemu] live_migration_port_range.

A destination claims ports for one incoming guest (its QEMU's migration port, an
NBD server for its disks) and gives them to the source in a MoveTarget. A port is
claimed when no other incoming guest of this process holds it and it can be
bound now; whoever then binds it (QEMU, qemu-storage-daemon) may still lose a race with
another program: bind_claimed then tries another port, PORT_ATTEMPTS times in all.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from novalet import config
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.consoles import can_bind, parse_range

LOG = logging.getLogger(__name__)

PORT_ATTEMPTS = 3
"""Ports bind_claimed tries when another program binds each first."""
T = TypeVar("T")


class NoFreeMigrationPort(VirtDriverError):
    msg_fmt = ("No free port to take %(uuid)s on in [qemu] live_migration_port_range "
               "%(first)d:%(last)d (%(held)d held by other incoming guests); widen the range")


def inbound_address(conf: config.Config) -> str:
    """[qemu] live_migration_inbound_addr, or the address of the default route's
    interface (no packet is sent to find it), or 127.0.0.1."""
    configured = str(conf.get("qemu", "live_migration_inbound_addr")).strip()
    if configured:
        return configured
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routes, never answers
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


class MigrationPorts:
    """The range's ports, claimed per incoming guest until released."""

    def __init__(self, conf: config.Config) -> None:
        self.first, self.last = parse_range(conf.get("qemu", "live_migration_port_range"))
        self.held: dict[str, set[int]] = {}  # instance uuid -> its ports

    def claim(self, uuid: str, address: str, count: int = 1) -> list[int]:
        """`count` free ports for `uuid` (added to what it holds already)."""
        taken = set().union(*self.held.values()) if self.held else set()
        found: list[int] = []
        for port in range(self.first, self.last + 1):
            if port not in taken and can_bind(address, port):
                found.append(port)
                if len(found) == count:
                    self.held.setdefault(uuid, set()).update(found)
                    return found
        raise NoFreeMigrationPort(uuid=uuid, first=self.first, last=self.last,
                                  held=len(taken))

    def release(self, uuid: str) -> None:
        self.held.pop(uuid, None)


async def bind_claimed(ports: MigrationPorts, uuid: str, address: str,
                       bind: Callable[[int], Awaitable[T]]) -> T:
    """bind(port) on a port claimed for `uuid`; when another program took the port
    between the claim and the bind ("... in use"), again on another one (the
    lost ports stay held by `uuid` until its release, so no claim returns them)."""
    attempt = 1
    while True:
        port = ports.claim(uuid, address)[0]
        try:
            return await bind(port)
        except VirtDriverError as exc:
            if attempt >= PORT_ATTEMPTS or "in use" not in str(exc):
                raise
            LOG.info("Port %d for %s was taken meanwhile; trying another: %s", port, uuid, exc)
            attempt += 1
