"""The nova-network style host driver: makes bridges, taps, dnsmasq and nftables match
a HostNetworkState.

What the caller can rely on:

- `apply(state)` is idempotent and converges: run it after every change (and
  at service start). It creates what is missing, corrects what differs and
  removes what Novalet made that the state no longer has. A failure in one
  part (one network's uplink missing, say) does not stop the others: every
  part is attempted, then ApplyIncomplete lists what failed.
- `plug(vif)` makes the vif's tap exist on its bridge before QEMU opens it
  (`-netdev tap,ifname=<vif.tap>,script=no,downscript=no`). Until `apply` has
  a state holding the vif's instance, the tap is quarantined: the firewall
  drops everything the guest sends. So apply the state with the new instance
  before (or right after) starting the guest.
- A tap is never removed from under a running guest by `apply`: only
  `unplug` removes a plugged tap no state has held yet, and `apply` removes a
  tap of a vif that has left the state only when no process holds it open.
  `unplug` succeeds when the tap is already gone.
- `plug` renders the firewall only from a state this driver applied: a driver
  that has applied none (a second driver on the host, or before the network
  service's first apply) makes the tap and leaves the firewall alone. Only the
  network service builds a driver (the compute service asks it to plug, see
  network/manager.py), so the state it renders from is the host's.
- One cloud per host (per network namespace): the first driver to touch the
  host takes a lock (`/run/novalet/host-network-<inode>.lock`, keyed on the
  namespace's inode, not its name: `ip netns exec X` and `netns="X"` share
  one; it names its cloud's state directory and pid) and holds it until `close()`; a driver of another
  cloud, or another process, raises HostNetworkTaken instead of replacing the
  first cloud's bridges and nftables tables (their names are fixed).
- `teardown()` removes everything Novalet made on the host (its links, its
  dnsmasq processes and their files, its floating addresses, its nftables
  tables) and nothing else.
- Only objects Novalet made are ever deleted: links carry an alias
  (`novalet:<role>:<id>`), dnsmasq processes are found from pid files in the
  state directory, nftables tables have Novalet's names, floating addresses
  are recorded in the state directory when added.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable
from ipaddress import IPv4Address, IPv4Interface, ip_address, ip_network
from pathlib import Path

from novalet.common.owned_lock import LockFailed, LockHeld, OwnedLock
from novalet.network.linux.commands import CommandRunner
from novalet.network.linux.dnsmasq import DHCP_LEASE_SECONDS, Dnsmasq
from novalet.network.linux.errors import LinuxNetError
from novalet.network.linux.firewall import Firewall
from novalet.network.linux.netlink import IFNAMSIZ, Link, Netlink, owner_alias, tap_mac
from novalet.network.model import HostNetworkState, NetworkOnHost, Vif

LOG = logging.getLogger(__name__)

FLOATING_RECORD = "floating-addresses.json"
DEVICES_RECORD = "devices.json"  # device name -> kind, for devices not of kind "tap"
LOCK_DIR = Path("/run/novalet")
NETNS_DIR = Path("/run/netns")  # where `ip netns add` binds its namespaces


class ApplyIncomplete(LinuxNetError):
    msg_fmt = "Host networking is only partly applied: %(problems)s"


class HostNetworkTaken(LinuxNetError):
    msg_fmt = ("Another Novalet cloud manages this host's networking: %(holder)s. Its "
               "bridges, dnsmasq and nftables tables (novalet_*) would be replaced, so this "
               "one does not start. Stop the other first (Ctrl-C its `novalet up`, or "
               "`kill %(pid)s`), or run this cloud on another host or network namespace. "
               "(Lock file: %(path)s)")


class HostLock(OwnedLock):
    """A host-wide lock on Novalet's kernel networking (common/owned_lock.py, an
    flock that goes with the process that holds it): one cloud, one process, per
    network namespace."""

    def acquire(self) -> None:
        try:
            super().acquire()
        except LockHeld as held:
            if held.owner is None:
                who, pid = "a process holds the lock", "<its pid>"
            else:
                who = f"the cloud with state directory {held.owner} (pid {held.pid})"
                pid = str(held.pid)
            raise HostNetworkTaken(holder=who, pid=pid, path=self.path) from None
        except LockFailed as exc:
            raise LinuxNetError(reason=f"cannot take the host lock: {exc.message}") from exc


def namespace_inode(netns: str | None) -> int:
    """The inode that names a network namespace in the kernel: this process's (what
    `ip netns exec X` put it in, if it did), or the one `ip netns add NAME` made.
    The host lock is keyed on it, not on the name: a process started under `ip netns
    exec X` and a driver given netns X work in the same namespace."""
    path = Path("/proc/self/ns/net") if netns is None else NETNS_DIR / netns
    try:
        return os.stat(path).st_ino
    except OSError as exc:
        raise LinuxNetError(reason=f"cannot find the network namespace "
                                   f"{netns or 'of this process'} ({path}): {exc}") from exc


def vlan_link_name(interface: str, vlan: int) -> str:
    """`<interface>.<vlan>`, or `vlan<vlan>` when that would be too long for Linux."""
    name = f"{interface}.{vlan}"
    return name if len(name) <= IFNAMSIZ else f"vlan{vlan}"


class LinuxNetDriver:
    """Host networking on Linux: bridges and taps by netlink, DHCP by dnsmasq,
    NAT and security groups by nftables.

    `netns` names a network namespace (as `ip netns` does) to work in instead of
    the host's: the integration tests use it to build a whole host in a scratch
    namespace. `runner` and `netlink` are the doors to programs and to netlink;
    unit tests pass fakes.

    `owner` names the cloud (its state directory) in the host lock; `lock_dir`
    holds the lock file (default: /run/novalet on the real host; none when a
    fake netlink stands in for the host).
    """

    def __init__(self, state_dir: Path, runner: CommandRunner | None = None, *,
                 netns: str | None = None, netlink: Netlink | None = None,
                 lease_seconds: int = DHCP_LEASE_SECONDS, owner: str | None = None,
                 lock_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self.runner = runner if runner is not None else CommandRunner(netns=netns)
        self.netlink = netlink if netlink is not None else Netlink(netns=netns)
        self.dnsmasq = Dnsmasq(state_dir / "dnsmasq", self.runner, lease_seconds=lease_seconds)
        self.firewall = Firewall(self.runner)
        self._lock = asyncio.Lock()
        self._plugged: set[str] = set()
        self._devices: dict[str, str] | None = None  # DEVICES_RECORD, read when first needed
        self._state = HostNetworkState(host="")
        self._applied = False  # whether _state is a state this driver applied
        self._warned_no_br_netfilter = False
        if lock_dir is None and netlink is None:
            lock_dir = LOCK_DIR
        self._netns = netns
        self._lock_dir = lock_dir
        self._owner = owner or str(state_dir)
        self._host_lock: HostLock | None = None

    def claim_host(self) -> None:
        """Take the host lock of the network namespace the driver works in (raises
        HostNetworkTaken if another cloud holds it); every change to the host does
        this first."""
        if self._lock_dir is None:
            return
        if self._host_lock is None:
            self._host_lock = HostLock(
                self._lock_dir / f"host-network-{namespace_inode(self._netns)}.lock",
                self._owner)
        self._host_lock.acquire()

    # -- the interface -------------------------------------------------------

    async def apply(self, state: HostNetworkState) -> None:
        """Make the host's networking match `state` (see the module docstring)."""
        async with self._lock:
            self.claim_host()
            started = time.monotonic()
            problems: list[str] = []
            networks = {n.bridge: n for n in state.networks}
            if networks:
                await self._attempt(problems, self._prepare_kernel())
            local_metadata = _is_loopback(state.metadata_host)
            for network in state.networks:
                await self._attempt(problems, self._ensure_network(network, local_metadata))
            wanted_taps: dict[str, Vif] = {}
            for instance in state.instances:
                for vif in instance.vifs:
                    if vif.bridge not in networks:
                        problems.append(f"vif {vif.id} of instance {instance.instance_uuid} is "
                                        f"on bridge {vif.bridge}, which no network of the state has")
                        continue
                    wanted_taps[vif.tap] = vif
                    await self._attempt(problems, self._ensure_device(vif, networks[vif.bridge]))
            # a plug protects a tap until a state holds it; from then on the state
            # does, and once it leaves the state only its QEMU holding it keeps it (an
            # evacuated guest's tap on its old host goes when that guest is destroyed)
            self._plugged -= set(wanted_taps)
            links = await self.netlink.links()
            quarantine = await self._remove_stale_taps(links, set(wanted_taps), problems)
            await self._attempt(problems, self.firewall.apply(state, quarantine))
            for network in state.networks:
                if network.dhcp:
                    await self._attempt(problems, self.dnsmasq.ensure(network))
            for bridge in self.dnsmasq.bridges():
                if bridge not in networks or not networks[bridge].dhcp:
                    await self._attempt(problems, self.dnsmasq.stop(bridge))
            await self._attempt(problems, self._apply_floating(state))
            for link in sorted(links, key=lambda link: link.role != "vlan"):
                if link.role in ("vlan", "bridge") and not self._wanted(link, networks):
                    await self._attempt(problems, self.netlink.delete_link(link.name))
            self._state = state
            self._applied = True
            LOG.info("Applied the network state of %s: %d networks, %d vifs, %d floating IPs "
                     "in %.3fs", state.host or "this host", len(networks), len(wanted_taps),
                     len(state.floating), time.monotonic() - started)
            if problems:
                raise ApplyIncomplete(problems="; ".join(problems))

    async def plug(self, vif: Vif, device: str = "tap") -> None:
        """Make the vif's persistent tap exist, up, on its bridge (making a bare bridge when
        there is none yet; `apply` completes it). A tap its applied state lacks is
        quarantined; with no applied state the firewall is not touched (see above).

        `device` "driver": the virt driver makes the device named `vif.tap` (libvirt's
        tap, a container's veth host end); it is put on the bridge if it exists already,
        else by the first apply after it does (or a second plug), and filtered by name
        from now on. The kind is recorded, so applies after a restart know it too.
        """
        async with self._lock:
            self.claim_host()
            links = {link.name: link for link in await self.netlink.links()}
            if vif.bridge not in links:
                prefix = ip_network(vif.cidr, strict=False).prefixlen
                await self.netlink.ensure_bridge(
                    vif.bridge, owner=owner_alias("bridge", vif.network_id), mtu=vif.mtu,
                    address=IPv4Interface(f"{vif.gateway}/{prefix}"))
            self._record_device(vif.tap, device)
            if device == "tap":
                await self.netlink.ensure_tap(vif.tap, vif.bridge,
                                              owner=owner_alias("tap", vif.id),
                                              mac=tap_mac(vif.address), mtu=vif.mtu)
            elif vif.tap in links:
                await self.netlink.ensure_port(vif.tap, vif.bridge)
            self._plugged.add(vif.tap)
            if not self._applied:
                # rendering from a state this driver does not hold would delete the
                # host's NAT, metadata, floating IP and security group rules
                LOG.info("Plugged %s before any network state was applied; the firewall "
                         "learns of it at the next apply", vif.tap)
            elif vif.tap not in self._state_taps(self._state):
                # a guest the firewall does not know yet may send nothing
                await self.firewall.apply(self._state, self._quarantine(
                    [*links.values()], self._state_taps(self._state)) | {vif.tap})

    async def unplug(self, vif: Vif, device: str = "tap") -> None:
        """Remove the vif's tap; nothing to do when it is already gone. A device the
        virt driver made (`device` "driver") is its to remove: it is only forgotten."""
        async with self._lock:
            self.claim_host()
            if device == "tap" and self._device_kind(vif.tap) == "tap":
                await self.netlink.delete_link(vif.tap)
            self._record_device(vif.tap, None)
            self._plugged.discard(vif.tap)

    async def teardown(self) -> None:
        """Remove every link, dnsmasq, floating address and table Novalet made."""
        async with self._lock:
            self.claim_host()
            problems: list[str] = []
            await self._attempt(problems, self.firewall.clear())
            for bridge in self.dnsmasq.bridges():
                await self._attempt(problems, self.dnsmasq.stop(bridge))
            await self._attempt(problems, self._apply_floating(HostNetworkState(host="")))
            order = {"tap": 0, "vlan": 1, "bridge": 2}
            for link in sorted(await self.netlink.links(), key=lambda link: order.get(link.role or "", 3)):
                if link.role in order:
                    await self._attempt(problems, self.netlink.delete_link(link.name))
            self._plugged.clear()
            self._devices = {}
            (self.state_dir / DEVICES_RECORD).unlink(missing_ok=True)
            self._state = HostNetworkState(host="")
            self._applied = False
            LOG.info("Removed all of Novalet's host networking")
            if problems:
                raise ApplyIncomplete(problems="; ".join(problems))

    async def close(self) -> None:
        """Release the netlink socket and its thread, and the host lock (the host's
        networking stays as it is)."""
        await self.netlink.close()
        if self._host_lock is not None:
            self._host_lock.release()

    # -- parts of apply ------------------------------------------------------

    async def _prepare_kernel(self) -> None:
        """Forwarding for NAT; br_netfilter so that traffic bridged between guests passes
        the security group chains."""
        await self.netlink.write_sysctl("net/ipv4/ip_forward", "1")
        key = "net/bridge/bridge-nf-call-iptables"
        if not await self.netlink.write_sysctl(key, "1"):
            try:
                await self.runner.run(["modprobe", "br_netfilter"])
            except LinuxNetError as exc:
                LOG.debug("modprobe br_netfilter: %s", exc)
            if not await self.netlink.write_sysctl(key, "1") and not self._warned_no_br_netfilter:
                self._warned_no_br_netfilter = True
                LOG.warning("The kernel has no br_netfilter: security groups do not filter "
                            "traffic between guests on the same bridge")

    async def _ensure_network(self, network: NetworkOnHost, local_metadata: bool) -> None:
        cidr = ip_network(network.cidr, strict=False)
        gateway = IPv4Interface(f"{network.gateway}/{cidr.prefixlen}")
        await self.netlink.ensure_bridge(network.bridge, owner=owner_alias("bridge", network.uuid),
                                         address=gateway, mtu=network.mtu)
        if network.vlan is not None and network.interface:
            await self.netlink.ensure_vlan(
                vlan_link_name(network.interface, network.vlan),
                parent=network.interface, vlan=network.vlan, bridge=network.bridge,
                owner=owner_alias("vlan", network.uuid), mtu=network.mtu)
        elif network.vlan is None and network.interface:
            await self.netlink.ensure_port(network.interface, network.bridge)
        # a VLAN network with no interface stays on this host's bridge: its own
        # layer 2, reached by nothing outside the host (single-host clouds)
        # DNAT to a loopback metadata server needs the bridge to route 127/8; the
        # firewall drops anything that arrives on a bridge addressed to 127/8
        await self.netlink.write_sysctl(f"net/ipv4/conf/{network.bridge}/route_localnet",
                                        "1" if local_metadata else "0")

    async def _ensure_device(self, vif: Vif, network: NetworkOnHost) -> None:
        if self._device_kind(vif.tap) == "tap":
            await self.netlink.ensure_tap(vif.tap, vif.bridge, owner=owner_alias("tap", vif.id),
                                          mac=tap_mac(vif.address), mtu=vif.mtu or network.mtu)
        elif any(link.name == vif.tap for link in await self.netlink.links()):
            await self.netlink.ensure_port(vif.tap, vif.bridge)
        # else: the virt driver has not made it (yet, or the guest is off)

    # -- devices the virt driver makes ---------------------------------------

    def _device_kind(self, name: str) -> str:
        if self._devices is None:
            try:
                self._devices = dict(json.loads((self.state_dir / DEVICES_RECORD).read_text()))
            except FileNotFoundError:
                self._devices = {}
        return self._devices.get(name, "tap")

    def _record_device(self, name: str, kind: str | None) -> None:
        """Remember a device's kind ("tap", the default, is not stored; None forgets)."""
        if self._device_kind(name) == (kind or "tap"):
            return
        assert self._devices is not None
        if kind is None or kind == "tap":
            self._devices.pop(name, None)
        else:
            self._devices[name] = kind
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = self.state_dir / DEVICES_RECORD
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(json.dumps(self._devices, sort_keys=True))
        tmp.replace(record)

    async def _remove_stale_taps(self, links: list[Link], wanted: set[str],
                                 problems: list[str]) -> set[str]:
        """Delete Novalet's taps that left the state, unless plugged or held open; return
        those kept (to be quarantined)."""
        kept = set()
        for link in links:
            if link.role != "tap" or link.name in wanted:
                continue
            if link.name in self._plugged or link.carrier:
                kept.add(link.name)
                continue
            await self._attempt(problems, self.netlink.delete_link(link.name))
        return kept

    async def _apply_floating(self, state: HostNetworkState) -> None:
        """Floating addresses (/32) on their public interface: add the state's, remove
        those this driver added before that the state no longer has."""
        record = self.state_dir / FLOATING_RECORD
        try:
            before = {(iface, ip) for iface, ip in json.loads(record.read_text())}
        except FileNotFoundError:
            before = set()
        wanted: set[tuple[str, str]] = set()
        for floating in state.floating:
            iface = floating.interface or state.public_interface
            if iface:
                wanted.add((iface, floating.floating_ip))
        # a router's gateway address is the outside side of its SNAT: answered there
        for network in state.networks:
            if network.snat_address and state.public_interface:
                wanted.add((state.public_interface, network.snat_address))
        problems: list[str] = []
        for iface, ip in sorted(before - wanted):
            await self._attempt(problems,
                                self.netlink.remove_address(iface, IPv4Interface(f"{ip}/32")))
        added = set()
        for iface, ip in sorted(wanted):
            if await self._attempt(problems,
                                   self.netlink.add_address(iface, IPv4Interface(f"{ip}/32"))):
                added.add((iface, ip))
        for iface, ip in sorted(added - before):  # moved here: tell the neighbours
            await self._attempt(problems, self.netlink.announce_address(iface, IPv4Address(ip)))
        keep = added | {pair for pair in before & wanted}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(json.dumps(sorted(keep)))
        tmp.replace(record)
        if problems:
            raise LinuxNetError(reason="; ".join(problems))

    # -- helpers -------------------------------------------------------------

    @staticmethod
    async def _attempt(problems: list[str], work: Awaitable[object]) -> bool:
        """Await one part of a reconciliation; record its failure instead of stopping."""
        try:
            await work
        except LinuxNetError as exc:
            LOG.error("%s", exc)
            problems.append(str(exc))
            return False
        return True

    @staticmethod
    def _wanted(link: Link, networks: dict[str, NetworkOnHost]) -> bool:
        if link.role == "bridge":
            return link.name in networks
        return any(n.vlan is not None and n.interface
                   and vlan_link_name(n.interface, n.vlan) == link.name
                   for n in networks.values())

    @staticmethod
    def _state_taps(state: HostNetworkState) -> set[str]:
        return {vif.tap for instance in state.instances for vif in instance.vifs}

    def _quarantine(self, links: list[Link], in_state: set[str]) -> set[str]:
        return {link.name for link in links if link.role == "tap" and link.name not in in_state}


def _is_loopback(address: str) -> bool:
    try:
        return ip_address(address).is_loopback
    except ValueError:
        return False
