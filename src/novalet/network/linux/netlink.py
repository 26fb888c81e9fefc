"""The one door for link, address and sysctl changes: pyroute2 in one worker thread.

Every change is logged at INFO and every failure becomes a NetlinkFailed
naming the operation. The blocking pyroute2 calls run in a single dedicated
thread (so one netlink socket serves them in order and the event loop never
blocks); when the driver works inside a named network namespace, that thread
enters it once with setns(2), so links, taps (/dev/net/tun) and /proc/sys/net
writes all land there.

Links Novalet creates carry an interface alias `novalet:<role>:<id>` (roles:
bridge, vlan, tap): ownership lives in the kernel, survives a restart of the
service, and a link without it (an administrator's bridge reused for a flat
network, a physical uplink) is never deleted.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import logging
import socket
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, TypeVar

from novalet.network.linux.errors import LinuxNetError

LOG = logging.getLogger(__name__)

T = TypeVar("T")

OWNER_PREFIX = "novalet:"
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFNAMSIZ = 15
"""Longest interface name Linux accepts."""

PROC_SYS = Path("/proc/sys")


class NetlinkFailed(LinuxNetError):
    msg_fmt = "Could not %(operation)s: %(reason)s"


def owner_alias(role: str, ident: str) -> str:
    """The alias that marks a link as made by Novalet for a role (bridge, vlan, tap)."""
    return f"{OWNER_PREFIX}{role}:{ident}"


def bridge_mac(bridge: str, address: IPv4Interface | None = None) -> str:
    """A stable, locally administered MAC for a bridge, derived from its name and
    IPv4 address.

    A bridge with an assigned MAC keeps it; one without takes the lowest MAC of
    its ports, which changes as guests come and go and confuses their ARP caches.
    The address is in it because multi_host bridges of one network on several
    hosts share a segment, each with an address of its own: their MACs must differ.
    """
    digest = hashlib.sha256(f"{bridge}/{address or ''}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def tap_mac(guest_mac: str) -> str:
    """The host side of a guest NIC: the guest's MAC with a first octet of fe.

    A high first octet keeps the tap from ever being the bridge's lowest MAC and
    keeps the host end distinct from the guest's own address (libvirt's convention).
    """
    return "fe:" + guest_mac.lower().split(":", 1)[1]


def gratuitous_arp(mac: str, address: IPv4Address) -> bytes:
    """The Ethernet frame of a gratuitous ARP request: `address` is at `mac`, sent to
    everyone (sender and target IP both `address`, RFC 5227's announcement)."""
    sender = bytes.fromhex(mac.replace(":", ""))
    ether = b"\xff" * 6 + sender + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)  # Ethernet, IPv4, request
    return ether + arp + sender + address.packed + b"\x00" * 6 + address.packed


@dataclass(frozen=True)
class Link:
    """One network interface as the kernel reports it."""

    name: str
    index: int
    kind: str | None          # bridge, tun, vlan, veth, ... (None for physical NICs, lo)
    master: int | None        # index of the bridge it is enslaved to
    mac: str | None
    mtu: int
    up: bool                  # administratively up
    carrier: bool             # for a tap: some process (QEMU) has it open
    alias: str | None

    @property
    def owned(self) -> bool:
        return bool(self.alias and self.alias.startswith(OWNER_PREFIX))

    @property
    def role(self) -> str | None:
        """bridge, vlan or tap for a link Novalet made; None otherwise."""
        if not self.owned:
            return None
        assert self.alias is not None
        return self.alias[len(OWNER_PREFIX):].split(":", 1)[0]


class Netlink:
    """Makes links, addresses and kernel knobs what the caller asks, idempotently."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novalet-netlink")
        self._ipr: Any = None

    # -- the thread ------------------------------------------------------------

    async def _call(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(self._in_thread, fn, *args, **kwargs))
        except LinuxNetError:
            raise
        except Exception as exc:  # NetlinkError, OSError, ValueError from pyroute2
            raise NetlinkFailed(operation=operation, reason=_describe(exc)) from exc
        finally:
            LOG.debug("netlink %s took %.4fs", operation, time.monotonic() - started)

    def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._ipr is None:
            from pyroute2 import IPRoute
            from pyroute2.netns import setns

            if self.netns is not None:
                # only this thread moves; the rest of the process stays where it is
                setns(self.netns, flags=0)
            self._ipr = IPRoute()
        return fn(*args, **kwargs)

    async def close(self) -> None:
        """Close the netlink socket and stop the worker thread."""
        def shut() -> None:
            if self._ipr is not None:
                self._ipr.close()
                self._ipr = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    # -- reading ---------------------------------------------------------------

    async def links(self) -> list[Link]:
        """Every link in the namespace."""
        return await self._call("list links", self._links)

    def _links(self) -> list[Link]:
        return [_link(msg) for msg in self._ipr.link("dump")]

    def _find(self, name: str) -> Link | None:
        from pyroute2 import NetlinkError

        try:
            msgs = self._ipr.link("get", ifname=name)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        return _link(msgs[0])

    def _require(self, name: str) -> Link:
        link = self._find(name)
        if link is None:
            raise NetlinkFailed(operation=f"use interface {name}",
                                reason="no such interface in this network namespace")
        return link

    async def ipv4_addresses(self, name: str) -> list[IPv4Interface]:
        """The IPv4 addresses on a link (empty when it does not exist)."""
        return await self._call(f"list the addresses of {name}", self._addresses, name)

    def _addresses(self, name: str) -> list[IPv4Interface]:
        link = self._find(name)
        if link is None:
            return []
        return [IPv4Interface(f"{msg.get('address')}/{msg['prefixlen']}")
                for msg in self._ipr.addr("dump", family=2, index=link.index)]

    # -- links -----------------------------------------------------------------

    async def ensure_bridge(self, name: str, *, owner: str, address: IPv4Interface | None = None,
                            mtu: int | None = None) -> None:
        """A bridge named `name` exists, is up, has `mtu` and (when given) `address`.

        A missing bridge is created with the alias `owner` and a stable MAC. On a
        bridge Novalet made, other IPv4 addresses are removed; a bridge someone else
        made is used as it is, only gaining the address.
        """
        await self._call(f"set up bridge {name}", self._ensure_bridge, name, owner, address, mtu)

    def _ensure_bridge(self, name: str, owner: str, address: IPv4Interface | None,
                       mtu: int | None) -> None:
        _check_name(name)
        link = self._find(name)
        if link is None:
            spec: dict[str, Any] = {"address": bridge_mac(name, address)}
            if mtu:
                spec["mtu"] = mtu
            self._ipr.link("add", ifname=name, kind="bridge", **spec)
            link = self._require(name)
            self._ipr.link("set", index=link.index, ifalias=owner)
            link = self._require(name)
            LOG.info("Created bridge %s (%s)", name, owner)
        elif link.kind != "bridge":
            raise NetlinkFailed(operation=f"use {name} as a bridge",
                                reason=f"it exists as a {link.kind or 'physical'} interface")
        self._set_mtu_and_up(link, mtu)
        if address is not None:
            current = self._addresses(name)
            if address not in current:
                self._ipr.addr("add", index=link.index, address=str(address.ip),
                               prefixlen=address.network.prefixlen)
                LOG.info("Added address %s to %s", address, name)
            if link.owned:
                for stale in current:
                    if stale != address:
                        self._ipr.addr("del", index=link.index, address=str(stale.ip),
                                       prefixlen=stale.network.prefixlen)
                        LOG.info("Removed stale address %s from %s", stale, name)

    async def ensure_vlan(self, name: str, *, parent: str, vlan: int, bridge: str, owner: str,
                          mtu: int | None = None) -> None:
        """An 802.1Q sub-interface `name` of `parent` with id `vlan`, up, enslaved to `bridge`."""
        await self._call(f"set up VLAN interface {name}", self._ensure_vlan, name, parent, vlan,
                         bridge, owner, mtu)

    def _ensure_vlan(self, name: str, parent: str, vlan: int, bridge: str, owner: str,
                     mtu: int | None) -> None:
        _check_name(name)
        link = self._find(name)
        if link is None:
            parent_link = self._require(parent)
            self._ipr.link("add", ifname=name, kind="vlan", link=parent_link.index, vlan_id=vlan)
            link = self._require(name)
            self._ipr.link("set", index=link.index, ifalias=owner)
            LOG.info("Created VLAN interface %s (id %d on %s)", name, vlan, parent)
        elif link.kind != "vlan":
            raise NetlinkFailed(operation=f"use {name} as a VLAN interface",
                                reason=f"it exists as a {link.kind or 'physical'} interface")
        self._enslave(link, bridge)
        self._set_mtu_and_up(self._require(name), mtu)

    async def ensure_port(self, name: str, bridge: str) -> None:
        """An existing interface (a flat network's uplink) is up and enslaved to `bridge`."""
        await self._call(f"add {name} to bridge {bridge}", self._ensure_port, name, bridge)

    def _ensure_port(self, name: str, bridge: str) -> None:
        link = self._require(name)
        self._enslave(link, bridge)
        self._set_mtu_and_up(self._require(name), None)

    async def ensure_tap(self, name: str, bridge: str, *, owner: str, mac: str | None = None,
                         mtu: int | None = None) -> None:
        """A persistent tap `name` exists, is up and enslaved to `bridge`, ready for
        QEMU's `-netdev tap,ifname=<name>,script=no,downscript=no`.

        An existing tun/tap device of that name (one QEMU made itself, say) is
        adopted: it gets the alias `owner`.
        """
        await self._call(f"set up tap {name}", self._ensure_tap, name, bridge, owner, mac, mtu)

    def _ensure_tap(self, name: str, bridge: str, owner: str, mac: str | None,
                    mtu: int | None) -> None:
        _check_name(name)
        link = self._find(name)
        if link is None:
            self._ipr.link("add", ifname=name, kind="tuntap", mode="tap",
                           ifr={"no_pi": 1, "one_queue": 0, "vnet_hdr": 0, "tun_excl": 0,
                                "multi_queue": 0, "persist": 0, "nofilter": 0})
            link = self._require(name)
            LOG.info("Created tap %s", name)
        elif link.kind != "tun":
            raise NetlinkFailed(operation=f"use {name} as a tap",
                                reason=f"it exists as a {link.kind or 'physical'} interface")
        if link.alias != owner:
            self._ipr.link("set", index=link.index, ifalias=owner)
        if mac and (link.mac or "").lower() != mac.lower():
            self._ipr.link("set", index=link.index, address=mac)
            LOG.info("Set MAC of %s to %s", name, mac)
        self._enslave(link, bridge)
        self._set_mtu_and_up(self._require(name), mtu)

    async def delete_link(self, name: str) -> bool:
        """Delete a link; False when it did not exist."""
        return await self._call(f"delete interface {name}", self._delete_link, name)

    def _delete_link(self, name: str) -> bool:
        link = self._find(name)
        if link is None:
            return False
        self._ipr.link("del", index=link.index)
        LOG.info("Deleted %s %s", link.kind or "interface", name)
        return True

    def _enslave(self, link: Link, bridge: str) -> None:
        master = self._require(bridge)
        if master.kind != "bridge":
            raise NetlinkFailed(operation=f"add {link.name} to {bridge}",
                                reason=f"{bridge} is not a bridge")
        if link.master != master.index:
            self._ipr.link("set", index=link.index, master=master.index)
            LOG.info("Added %s to bridge %s", link.name, bridge)

    def _set_mtu_and_up(self, link: Link, mtu: int | None) -> None:
        if mtu and link.mtu != mtu:
            self._ipr.link("set", index=link.index, mtu=mtu)
            LOG.info("Set MTU of %s to %d", link.name, mtu)
        if not link.up:
            self._ipr.link("set", index=link.index, state="up")
            LOG.info("Set %s up", link.name)

    # -- addresses -------------------------------------------------------------

    async def add_address(self, name: str, address: IPv4Interface) -> bool:
        """Add an address to an existing link; False when it was already there."""
        return await self._call(f"add {address} to {name}", self._add_address, name, address)

    def _add_address(self, name: str, address: IPv4Interface) -> bool:
        link = self._require(name)
        if address in self._addresses(name):
            return False
        self._ipr.addr("add", index=link.index, address=str(address.ip),
                       prefixlen=address.network.prefixlen)
        LOG.info("Added address %s to %s", address, name)
        return True

    async def announce_address(self, name: str, address: IPv4Address) -> None:
        """Broadcast a gratuitous ARP for `address` from link `name` (as `arping -U`
        does): neighbours that cached another host's MAC for it, as a floating IP's
        router does when the IP moves to this host with its guest, learn this one."""
        await self._call(f"announce {address} on {name}", self._announce, name, address)

    def _announce(self, name: str, address: IPv4Address) -> None:
        link = self._require(name)
        if not link.mac:
            raise NetlinkFailed(operation=f"announce {address} on {name}",
                                reason="the link has no MAC address")
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
            raw.bind((name, 0))
            raw.send(gratuitous_arp(link.mac, address))
        LOG.info("Announced %s on %s (gratuitous ARP)", address, name)

    async def remove_address(self, name: str, address: IPv4Interface) -> bool:
        """Remove an address; False when the link or the address was not there."""
        return await self._call(f"remove {address} from {name}", self._remove_address, name,
                                address)

    def _remove_address(self, name: str, address: IPv4Interface) -> bool:
        link = self._find(name)
        if link is None or address not in self._addresses(name):
            return False
        self._ipr.addr("del", index=link.index, address=str(address.ip),
                       prefixlen=address.network.prefixlen)
        LOG.info("Removed address %s from %s", address, name)
        return True

    # -- kernel knobs ----------------------------------------------------------

    async def read_sysctl(self, key: str) -> str | None:
        """A /proc/sys value (key like net/ipv4/ip_forward), or None when it does not exist."""
        return await self._call(f"read sysctl {key}", self._read_sysctl, key)

    def _read_sysctl(self, key: str) -> str | None:
        try:
            return (PROC_SYS / key).read_text().strip()
        except FileNotFoundError:
            return None

    async def write_sysctl(self, key: str, value: str) -> bool:
        """Set a /proc/sys value when it differs; False when the key does not exist."""
        return await self._call(f"set sysctl {key}={value}", self._write_sysctl, key, value)

    def _write_sysctl(self, key: str, value: str) -> bool:
        current = self._read_sysctl(key)
        if current is None:
            return False
        if current != value:
            (PROC_SYS / key).write_text(value)
            LOG.info("Set sysctl %s=%s", key.replace("/", "."), value)
        return True


def _link(msg: Any) -> Link:
    flags = msg["flags"]
    return Link(name=msg.get("ifname"), index=msg["index"], kind=msg.get(("linkinfo", "kind")),
                master=msg.get("master"), mac=msg.get("address"), mtu=msg.get("mtu"),
                up=bool(flags & IFF_UP), carrier=bool(flags & IFF_LOWER_UP),
                alias=msg.get("ifalias"))


def _check_name(name: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or " " in name:
        raise NetlinkFailed(operation=f"name an interface {name!r}",
                            reason=f"Linux interface names are 1 to {IFNAMSIZ} characters "
                                   "without '/' or spaces")


def _describe(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    if code is not None and exc.args and isinstance(exc.args[-1], str):
        return f"{exc.args[-1]} (netlink error {code})"
    return str(exc) or type(exc).__name__
