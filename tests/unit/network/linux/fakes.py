"""In-memory stand-ins for the Linux network driver's doors: programs and netlink.

FakeRunner records every command (with its stdin) and plays dnsmasq: running
it "daemonizes" a fake process with a pid file and a /proc command line.
FakeNetlink keeps links and addresses in dictionaries. FakeIPRoute plays the
few pyroute2 calls the real Netlink door makes, so that door's logic runs
without a kernel.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from pyroute2 import NetlinkError

from novalet.network.linux.commands import CommandFailed, CommandResult, CommandRunner
from novalet.network.linux.netlink import Link, Netlink, NetlinkFailed, bridge_mac


class FakeRunner(CommandRunner):
    """Records commands; `dnsmasq` starts a fake daemon; `nft` and others succeed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.inputs: list[str | None] = []
        self.processes: dict[int, list[str]] = {}
        self.signals: list[tuple[int, int]] = []
        self.fail: dict[str, str] = {}        # program -> stderr of a failure
        self.ignore_term: set[int] = set()    # pids that survive SIGTERM
        self._next_pid = 40000

    def commands(self, program: str) -> list[list[str]]:
        return [c for c in self.calls if os.path.basename(c[0]) == program]

    def nft_scripts(self) -> list[str]:
        return [self.inputs[i] or "" for i, c in enumerate(self.calls) if c[0] == "nft"]

    async def run(self, argv: Sequence[str], *, input: str | None = None,
                  timeout: float = 30.0, check: bool = True) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        self.inputs.append(input)
        program = os.path.basename(argv[0])
        if program in self.fail:
            raise CommandFailed(program=program, returncode=1, stderr=self.fail[program])
        if program == "dnsmasq":
            pid = self.spawn(argv)
            pidfile = next(a.split("=", 1)[1] for a in argv if a.startswith("--pid-file="))
            with open(pidfile, "w") as handle:
                handle.write(f"{pid}\n")
        return CommandResult(tuple(argv), 0, "", "", 0.0)

    def spawn(self, argv: list[str]) -> int:
        self._next_pid += 1
        self.processes[self._next_pid] = list(argv)
        return self._next_pid

    def signal(self, pid: int, sig: int) -> bool:
        if pid not in self.processes:
            return False
        self.signals.append((pid, sig))
        if sig == signal.SIGKILL or (sig == signal.SIGTERM and pid not in self.ignore_term):
            del self.processes[pid]
        return True

    def cmdline(self, pid: int) -> list[str] | None:
        return self.processes.get(pid)


@dataclass
class FakeLink:
    name: str
    kind: str | None
    index: int
    master: int | None = None
    mac: str | None = None
    mtu: int = 1500
    up: bool = False
    carrier: bool = False
    alias: str | None = None
    vlan: tuple[str, int] | None = None      # (parent, id)
    addresses: list[IPv4Interface] = field(default_factory=list)


class FakeNetlink(Netlink):
    """Links and addresses in memory, with the semantics of the real door."""

    def __init__(self) -> None:
        self.netns = None
        self.links_by_name: dict[str, FakeLink] = {}
        self.sysctls: dict[str, str] = {"net/ipv4/ip_forward": "0",
                                        "net/bridge/bridge-nf-call-iptables": "1"}
        self.changes: list[str] = []
        self.announced: list[tuple[str, str]] = []  # gratuitous ARPs: (link, address)
        self.fail: dict[str, str] = {}       # link name -> reason any change to it fails
        self._index = 1

    # helpers for tests
    def add(self, name: str, kind: str | None, **values: Any) -> FakeLink:
        self._index += 1
        link = FakeLink(name=name, kind=kind, index=self._index, **values)
        self.links_by_name[name] = link
        return link

    def master_of(self, name: str) -> str | None:
        link = self.links_by_name[name]
        return next((other.name for other in self.links_by_name.values()
                     if other.index == link.master), None)

    def _check(self, name: str) -> None:
        if name in self.fail:
            raise NetlinkFailed(operation=f"change {name}", reason=self.fail[name])

    def _link(self, name: str) -> FakeLink:
        self._check(name)
        try:
            return self.links_by_name[name]
        except KeyError:
            raise NetlinkFailed(operation=f"use interface {name}",
                                reason="no such interface in this network namespace") from None

    def _enslave_up(self, link: FakeLink, bridge: str | None, mtu: int | None) -> None:
        if bridge is not None:
            master = self._link(bridge)
            if link.master != master.index:
                link.master = master.index
                self.changes.append(f"enslave {link.name} {bridge}")
        if mtu and link.mtu != mtu:
            link.mtu = mtu
            self.changes.append(f"mtu {link.name} {mtu}")
        if not link.up:
            link.up = True
            self.changes.append(f"up {link.name}")

    # the door
    async def close(self) -> None:
        pass

    async def links(self) -> list[Link]:
        return [Link(name=f.name, index=f.index, kind=f.kind, master=f.master, mac=f.mac,
                     mtu=f.mtu, up=f.up, carrier=f.carrier, alias=f.alias)
                for f in self.links_by_name.values()]

    async def ipv4_addresses(self, name: str) -> list[IPv4Interface]:
        link = self.links_by_name.get(name)
        return list(link.addresses) if link else []

    async def ensure_bridge(self, name: str, *, owner: str, address: IPv4Interface | None = None,
                            mtu: int | None = None) -> None:
        self._check(name)
        link = self.links_by_name.get(name)
        if link is None:
            link = self.add(name, "bridge", mac=bridge_mac(name, address), alias=owner)
            self.changes.append(f"create bridge {name}")
        self._enslave_up(link, None, mtu)
        if address is not None:
            if address not in link.addresses:
                link.addresses.append(address)
                self.changes.append(f"address {name} {address}")
            if link.alias and link.alias.startswith("novalet:"):
                for stale in [a for a in link.addresses if a != address]:
                    link.addresses.remove(stale)
                    self.changes.append(f"unaddress {name} {stale}")

    async def ensure_vlan(self, name: str, *, parent: str, vlan: int, bridge: str, owner: str,
                          mtu: int | None = None) -> None:
        self._check(name)
        link = self.links_by_name.get(name)
        if link is None:
            self._link(parent)
            link = self.add(name, "vlan", alias=owner, vlan=(parent, vlan))
            self.changes.append(f"create vlan {name}")
        self._enslave_up(link, bridge, mtu)

    async def ensure_port(self, name: str, bridge: str) -> None:
        self._enslave_up(self._link(name), bridge, None)

    async def ensure_tap(self, name: str, bridge: str, *, owner: str, mac: str | None = None,
                         mtu: int | None = None) -> None:
        self._check(name)
        link = self.links_by_name.get(name)
        if link is None:
            link = self.add(name, "tun")
            self.changes.append(f"create tap {name}")
        link.alias = owner
        if mac:
            link.mac = mac
        self._enslave_up(link, bridge, mtu)

    async def delete_link(self, name: str) -> bool:
        self._check(name)
        link = self.links_by_name.pop(name, None)
        if link is None:
            return False
        self.changes.append(f"delete {name}")
        for other in self.links_by_name.values():
            if other.master == link.index:
                other.master = None
        return True

    async def add_address(self, name: str, address: IPv4Interface) -> bool:
        link = self._link(name)
        if address in link.addresses:
            return False
        link.addresses.append(address)
        self.changes.append(f"address {name} {address}")
        return True

    async def announce_address(self, name: str, address: IPv4Address) -> None:
        self._link(name)
        self.announced.append((name, str(address)))

    async def remove_address(self, name: str, address: IPv4Interface) -> bool:
        link = self.links_by_name.get(name)
        if link is None or address not in link.addresses:
            return False
        link.addresses.remove(address)
        self.changes.append(f"unaddress {name} {address}")
        return True

    async def read_sysctl(self, key: str) -> str | None:
        if key.startswith("net/ipv4/conf/"):
            return self.sysctls.get(key, "0" if key.split("/")[3] in self.links_by_name else None)
        return self.sysctls.get(key)

    async def write_sysctl(self, key: str, value: str) -> bool:
        if await self.read_sysctl(key) is None:
            return False
        self.sysctls[key] = value
        return True


class FakeMsg(dict[Any, Any]):
    """A netlink message: plain keys and ('linkinfo', 'kind') tuples through get()."""


class FakeIPRoute:
    """The pyroute2 IPRoute calls the Netlink door makes, over FakeLink records."""

    def __init__(self) -> None:
        self.links: dict[int, FakeLink] = {1: FakeLink("lo", None, 1, up=True, mtu=65536)}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._index = 1

    def _msg(self, link: FakeLink) -> FakeMsg:
        flags = (1 if link.up else 0) | (0x10000 if link.carrier else 0)
        return FakeMsg({"ifname": link.name, "index": link.index, "flags": flags,
                        ("linkinfo", "kind"): link.kind, "master": link.master,
                        "address": link.mac, "mtu": link.mtu, "ifalias": link.alias})

    def link(self, command: str, **kw: Any) -> Any:
        self.calls.append(("link", command, kw))
        if command == "dump":
            return [self._msg(link) for link in self.links.values()]
        if command == "get":
            for link in self.links.values():
                if link.name == kw["ifname"]:
                    return [self._msg(link)]
            raise NetlinkError(errno.ENODEV, "No such device")
        if command == "add":
            self._index += 1
            kind = "tun" if kw["kind"] == "tuntap" else kw["kind"]
            self.links[self._index] = FakeLink(kw["ifname"], kind, self._index,
                                               mac=kw.get("address"), mtu=kw.get("mtu", 1500))
            return ()
        link = self.links[kw["index"]]
        if command == "set":
            for key, value in kw.items():
                if key == "state":
                    link.up = value == "up"
                elif key == "ifalias":
                    link.alias = value
                elif key == "address":
                    link.mac = value
                elif key in ("master", "mtu"):
                    setattr(link, key, value)
            return ()
        if command == "del":
            del self.links[kw["index"]]
            return ()
        raise AssertionError(f"unexpected link {command}")

    def addr(self, command: str, **kw: Any) -> Any:
        self.calls.append(("addr", command, kw))
        if command == "dump":
            link = self.links[kw["index"]]
            return [FakeMsg({"address": str(a.ip), "prefixlen": a.network.prefixlen})
                    for a in link.addresses]
        link = self.links[kw["index"]]
        address = IPv4Interface(f"{kw['address']}/{kw['prefixlen']}")
        if command == "add":
            link.addresses.append(address)
        elif command == "del":
            link.addresses.remove(address)
        return ()

    def close(self) -> None:
        pass

    def by_name(self, name: str) -> FakeLink:
        return next(link for link in self.links.values() if link.name == name)

    def changes(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [c for c in self.calls if c[1] not in ("dump", "get")]
