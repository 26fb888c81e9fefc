"""The Linux network driver against the real kernel, dnsmasq and nftables, in scratch namespaces.

The lab: a namespace plays the network host (the driver works in it through
its `netns` argument: pyroute2 in a thread that entered it, programs under
nsenter), two namespaces play guests and one plays the outside world,
reached from the host by a veth that is also the public interface. Each guest
gets its NIC the way a QEMU guest does: the driver's persistent tap is opened
by a process (here a thread of this test, the "wire") that copies frames to
and from a tap named eth0 inside the guest's namespace. Guests get their
addresses from the driver's dnsmasq with busybox udhcpc.

Only private addresses are used, and only inside these namespaces. The tests
share one lab and run in file order; the last ones remove an instance and tear
everything down. Namespaces (and anything left running in them) are removed
even when a test fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from novalet.network.linux import LinuxNetDriver
from novalet.network.linux.firewall import render_ruleset
from novalet.network.linux.netlink import bridge_mac
from novalet.network.model import (
    FloatingNat,
    HostNetworkState,
    InstanceNet,
    NetworkOnHost,
    SecurityRule,
    Vif,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

T = TypeVar("T")

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

CIDR = "10.251.0.0/24"
GATEWAY = "10.251.0.1"
PUBLIC_HOST = "192.168.251.1"       # the host's end of the public veth
OUTSIDE = "192.168.251.2"           # the outside world's address
FLOATING = "192.168.251.50"         # guest 1's floating IP
METADATA_PORT = 18775
BRIDGE = "nvbr-test"


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, bridges, nftables)")
    for program, package in (("nft", "nftables"), ("dnsmasq", "dnsmasq-base"),
                             ("busybox", "busybox-static"), ("ip", "iproute2"),
                             ("ping", "iputils-ping"), ("nsenter", "util-linux")):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (apt-get install {package})")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")


def sh(*argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run fn in a thread that entered network namespace `name`: sockets and taps it
    makes belong there (and keep belonging there once the thread is gone)."""
    from pyroute2.netns import setns

    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            setns(name, flags=0)
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def open_tap(name: str) -> int:
    """Attach to tap `name` (creating it when missing), as QEMU's -netdev tap does."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


class Wire:
    """A guest's NIC: copies frames between the host's tap and eth0 in the guest's namespace."""

    def __init__(self, host_ns: str, tap: str, guest_ns: str, mac: str) -> None:
        self.host_fd = in_netns(host_ns, lambda: open_tap(tap))
        self.guest_fd = in_netns(guest_ns, lambda: open_tap("eth0"))
        sh("ip", "-n", guest_ns, "link", "set", "eth0", "address", mac, "up")
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peers = {self.host_fd: self.guest_fd, self.guest_fd: self.host_fd}
        while True:
            ready, _, _ = select.select([self.host_fd, self.guest_fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    frame = os.read(fd, 65536)
                    os.write(peers[fd], frame)
                except BlockingIOError:
                    continue
                except OSError:
                    return  # the tap was deleted under us: the "guest" lost its NIC

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self.host_fd, self.guest_fd, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass
class Guest:
    ns: str
    vif: Vif
    instance: InstanceNet
    wire: Wire | None = None


@dataclass
class Lab:
    host: str
    outside: str
    driver: LinuxNetDriver
    state: HostNetworkState
    guests: list[Guest]
    tmp: Path
    namespaces: list[str] = field(default_factory=list)
    leases: dict[str, str] = field(default_factory=dict)
    apply_seconds: float = 0.0

    @property
    def dnsmasq_dir(self) -> Path:
        return self.tmp / "state" / "dnsmasq"

    def nft(self) -> str:
        return sh("ip", "netns", "exec", self.host, "nft", "list", "ruleset").stdout


def make_state(guests: list[Guest]) -> HostNetworkState:
    network = NetworkOnHost(
        uuid="net-1", label="private", cidr=CIDR, gateway=GATEWAY, bridge=BRIDGE,
        dhcp_start="10.251.0.2", netmask="255.255.255.0", dns=[],
        hosts={g.vif.address: (g.vif.fixed_ip, f"vm-{i + 1}") for i, g in enumerate(guests)})
    return HostNetworkState(
        host="lab", networks=[network], instances=[g.instance for g in guests],
        floating=[FloatingNat(FLOATING, "10.251.0.11")], metadata_host="127.0.0.1",
        metadata_port=METADATA_PORT, public_interface="nvpub")


def make_guests(prefix: str) -> list[Guest]:
    guests = []
    for n in (1, 2):
        vif = Vif(id=str(uuid.uuid4()), address=f"52:54:00:fb:00:{10 + n:02x}", network_id="net-1",
                  network_label="private", bridge=BRIDGE, fixed_ip=f"10.251.0.{10 + n}", cidr=CIDR,
                  gateway=GATEWAY)
        guests.append(Guest(ns=f"{prefix}-g{n}", vif=vif,
                            instance=InstanceNet(instance_uuid=f"inst-{n}", project_id="p",
                                                 vifs=[vif])))
    guests[0].instance.rules = [
        SecurityRule("tcp", 7001, 7001, remote_ips=[guests[1].vif.fixed_ip]),
        SecurityRule("tcp", 7003, 7003, cidr="0.0.0.0/0"),
        SecurityRule("udp", 7004, 7004, cidr="0.0.0.0/0"),
        SecurityRule("icmp", -1, -1, cidr=CIDR),
    ]
    return guests


UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in bound|renew) ;; *) exit 0 ;; esac
ip addr add "$ip/$subnet" dev "$interface"
[ -n "$router" ] && ip route add default via "$router" dev "$interface"
echo "$ip $subnet $router $hostname" > "$LEASE_FILE"
"""


def get_leases(lab: Lab) -> None:
    script = lab.tmp / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    procs = {}
    for guest in lab.guests:
        lease = lab.tmp / f"{guest.ns}.lease"
        procs[guest.ns] = (lease, subprocess.Popen(
            ["ip", "netns", "exec", guest.ns, "env", f"LEASE_FILE={lease}", "busybox", "udhcpc",
             "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", str(script)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for ns, (lease, proc) in procs.items():
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, f"udhcpc in {ns} got no lease:\n{out}"
        lab.leases[ns] = lease.read_text().strip()


def cleanup_namespaces(names: list[str]) -> None:
    for name in names:
        pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
        for pid in pids:  # only what this test started there (dnsmasq, udhcpc)
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", name, check=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lab]:
    _require_tools()
    tmp = tmp_path_factory.mktemp("linuxnet")
    prefix = f"nvt{os.getpid() % 100000}"
    host, outside = f"{prefix}-host", f"{prefix}-out"
    guests = make_guests(prefix)
    names = [host, outside, *(g.ns for g in guests)]
    driver = LinuxNetDriver(tmp / "state", netns=host)
    lab = Lab(host=host, outside=outside, driver=driver, state=make_state(guests), guests=guests,
              tmp=tmp, namespaces=names)
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", host, "link", "add", "nvpub", "type", "veth", "peer", "name", "eth0",
           "netns", outside)
        sh("ip", "-n", host, "addr", "add", f"{PUBLIC_HOST}/24", "dev", "nvpub")
        sh("ip", "-n", host, "link", "set", "nvpub", "up")
        sh("ip", "-n", outside, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        sh("ip", "-n", outside, "link", "set", "eth0", "up")
        for guest in guests:
            await driver.plug(guest.vif)
        started = time.monotonic()
        await driver.apply(lab.state)
        lab.apply_seconds = time.monotonic() - started
        for guest in guests:
            guest.wire = Wire(host, guest.vif.tap, guest.ns, guest.vif.address)
        get_leases(lab)
        yield lab
    finally:
        try:
            await driver.teardown()
        except Exception as exc:  # the namespaces go anyway
            print(f"teardown failed: {exc}")
        await driver.close()
        for guest in guests:
            if guest.wire:
                guest.wire.close()
        cleanup_namespaces(names)


# -- socket helpers, each socket made in a namespace -----------------------------

def listen(ns: str, port: int, address: str = "0.0.0.0", kind: int = socket.SOCK_STREAM
           ) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(8)
        sock.settimeout(2)
        return sock
    return in_netns(ns, make)


def connect(ns: str, address: str, port: int, timeout: float = 2.0) -> socket.socket:
    def make() -> socket.socket:
        return socket.create_connection((address, port), timeout=timeout)
    return in_netns(ns, make)


def accepted_peer(ns: str, listen_port: int, target: str, target_port: int,
                  listen_address: str = "0.0.0.0", from_ns: str | None = None) -> str:
    """Connect from `from_ns` to target:target_port; return the source address the listener
    in `ns` saw."""
    server = listen(ns, listen_port, listen_address)
    try:
        client = connect(from_ns or ns, target, target_port)
        conn, peer = server.accept()
        conn.close()
        client.close()
        return str(peer[0])
    finally:
        server.close()


def ping(ns: str, address: str) -> bool:
    return sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", address, check=False).returncode == 0


def arun(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Blocking socket work off the event loop (the driver's dnsmasq lives on it)."""
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


# -- the tests -------------------------------------------------------------------

async def test_apply_is_fast(lab: Lab) -> None:
    print(f"first apply of 1 network with 2 instances: {lab.apply_seconds:.3f}s")
    started = time.monotonic()
    await lab.driver.apply(lab.state)
    print(f"apply with nothing to change: {time.monotonic() - started:.3f}s")
    assert lab.apply_seconds < 2.0


async def test_nft_accepts_every_rule_shape_the_renderer_makes(lab: Lab) -> None:
    guests = make_guests("shape")
    guests[1].instance.rules = [
        SecurityRule("tcp", 1000, 2000, cidr="10.9.0.0/16"),
        SecurityRule("udp", None, None, cidr="10.9.1.2/32"),
        SecurityRule("icmp", 8, -1, cidr="0.0.0.0/0"),
        SecurityRule("icmp", 3, 4, remote_ips=["10.251.0.11", "10.251.0.13"]),
        SecurityRule(None, None, None, cidr="10.9.0.0/16"),
        SecurityRule("47", None, None, cidr="0.0.0.0/0"),
    ]
    state = dataclasses.replace(make_state(guests), metadata_host="192.168.251.9",
                                floating=[FloatingNat(FLOATING, "10.251.0.11"),
                                          FloatingNat("192.168.251.51", "172.16.0.5")])
    second = dataclasses.replace(state.networks[0], uuid="net-2", cidr="10.252.0.0/24",
                                 gateway="10.252.0.1", bridge="nvbr-two", hosts={})
    state.networks.append(second)
    script = render_ruleset(state, quarantined=["tapquarantine"])
    check = subprocess.run(["ip", "netns", "exec", lab.host, "nft", "-c", "-f", "-"], input=script,
                           capture_output=True, text=True, timeout=10)
    assert check.returncode == 0, check.stderr


async def test_dhcp_gives_each_guest_its_static_address(lab: Lab) -> None:
    assert lab.leases[lab.guests[0].ns] == "10.251.0.11 255.255.255.0 10.251.0.1 vm-1"
    assert lab.leases[lab.guests[1].ns] == "10.251.0.12 255.255.255.0 10.251.0.1 vm-2"


async def test_guests_ping_their_gateway(lab: Lab) -> None:
    for guest in lab.guests:
        assert ping(guest.ns, GATEWAY), f"{guest.ns} cannot ping the gateway"


async def test_outbound_traffic_is_masqueraded_or_leaves_by_the_floating_ip(lab: Lab) -> None:
    g1, g2 = lab.guests
    # the outside has no route to 10.251.0.0/24: an answer proves the source was translated
    assert await arun(accepted_peer, lab.outside, 9000, OUTSIDE, 9000, "0.0.0.0", g2.ns) == PUBLIC_HOST
    assert await arun(accepted_peer, lab.outside, 9000, OUTSIDE, 9000, "0.0.0.0", g1.ns) == FLOATING
    nat = sh("ip", "netns", "exec", lab.host, "nft", "list", "table", "ip", "novalet_nat").stdout
    assert f'oifname != "{BRIDGE}" ip saddr {CIDR} ip daddr != {CIDR} masquerade' in nat


async def test_security_group_allows_a_member_and_denies_the_rest(lab: Lab) -> None:
    g1, g2 = lab.guests
    assert await arun(accepted_peer, g1.ns, 7001, "10.251.0.11", 7001, "0.0.0.0", g2.ns) == "10.251.0.12"
    closed = listen(g1.ns, 7002)
    try:
        with pytest.raises(TimeoutError):
            await arun(connect, g2.ns, "10.251.0.11", 7002, 0.5)
    finally:
        closed.close()
    # the host is no member of the group either
    server = listen(g1.ns, 7001)
    try:
        with pytest.raises(TimeoutError):
            await arun(connect, lab.host, "10.251.0.11", 7001, 0.5)
    finally:
        server.close()
    # icmp is open to the network for guest 1; guest 2 has no rules at all
    assert ping(g2.ns, "10.251.0.11")


async def test_a_guest_cannot_send_from_an_address_not_its_own(lab: Lab) -> None:
    g1, g2 = lab.guests
    sh("ip", "-n", g2.ns, "addr", "add", "10.251.0.99/24", "dev", "eth0")
    receiver = listen(g1.ns, 7004, kind=socket.SOCK_DGRAM)
    receiver.settimeout(1.0)

    def send_from(source: str) -> None:
        def go() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((source, 0))
                sock.sendto(source.encode(), ("10.251.0.11", 7004))
        in_netns(g2.ns, go)

    try:
        send_from("10.251.0.12")  # the real address first: it also fills g2's ARP cache
        data, peer = receiver.recvfrom(100)
        assert (data, peer[0]) == (b"10.251.0.12", "10.251.0.12")
        send_from("10.251.0.99")
        receiver.settimeout(0.5)
        with pytest.raises(TimeoutError):
            receiver.recvfrom(100)
    finally:
        receiver.close()
        sh("ip", "-n", g2.ns, "addr", "del", "10.251.0.99/24", "dev", "eth0")


async def test_floating_ip_reaches_the_guest_from_the_host_and_the_outside(lab: Lab) -> None:
    g1 = lab.guests[0]
    addresses = sh("ip", "-n", lab.host, "-br", "addr", "show", "nvpub").stdout
    assert f"{FLOATING}/32" in addresses
    assert await arun(accepted_peer, g1.ns, 7003, FLOATING, 7003, "0.0.0.0", lab.host)
    assert await arun(accepted_peer, g1.ns, 7003, FLOATING, 7003, "0.0.0.0", lab.outside) == OUTSIDE


async def test_metadata_address_reaches_the_host_with_the_guest_source(lab: Lab) -> None:
    g1 = lab.guests[0]
    peer = await arun(accepted_peer, lab.host, METADATA_PORT, "169.254.169.254", 80,
                      "127.0.0.1", g1.ns)
    assert peer == "10.251.0.11"


def ipv4_udp_frame(src_mac: str, dst_mac: str, src: str, dst: str, dport: int,
                   payload: bytes) -> bytes:
    """An Ethernet frame carrying one UDP datagram (no UDP checksum, as IPv4 allows)."""
    udp = struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    words = struct.unpack("!10H", header)
    total = sum(words)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    header = header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:]
    return bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) \
        + b"\x08\x00" + header + udp


async def test_nothing_on_a_bridge_reaches_the_hosts_loopback(lab: Lab) -> None:
    """The bridges route 127/8 (for the loopback metadata server); only the DNAT may use it."""
    g1 = lab.guests[0]
    receiver = listen(lab.host, METADATA_PORT, "127.0.0.1", kind=socket.SOCK_DGRAM)
    receiver.settimeout(0.5)

    def send(dst: str, dport: int) -> None:
        gateway_mac = bridge_mac(BRIDGE, IPv4Interface(f"{GATEWAY}/24"))
        frame = ipv4_udp_frame(g1.vif.address, gateway_mac, g1.vif.fixed_ip, dst, dport,
                               b"sneaky")
        def go() -> None:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
                sock.bind(("eth0", 0))
                sock.send(frame)
        in_netns(g1.ns, go)

    try:
        send("127.0.0.1", METADATA_PORT)
        with pytest.raises(TimeoutError):
            receiver.recvfrom(100)
        guard = sh("ip", "netns", "exec", lab.host, "nft", "list", "chain", "inet",
                   "novalet_filter", "prerouting").stdout
        assert "ip daddr 127.0.0.0/8 drop" in guard
    finally:
        receiver.close()


async def test_applying_the_same_state_again_changes_nothing(lab: Lab) -> None:
    pid = lab.driver.dnsmasq.pid(BRIDGE)
    ruleset = lab.nft()
    links = sh("ip", "-n", lab.host, "-o", "link").stdout
    await lab.driver.apply(lab.state)
    assert lab.driver.dnsmasq.pid(BRIDGE) == pid
    assert _without_counters(lab.nft()) == _without_counters(ruleset)
    assert sh("ip", "-n", lab.host, "-o", "link").stdout == links


async def test_a_vlan_network_rides_on_its_interface(lab: Lab) -> None:
    probe = sh("ip", "-n", lab.host, "link", "add", "link", "nvpub", "name", "nvprobe.7",
               "type", "vlan", "id", "7", check=False)
    if probe.returncode != 0:
        pytest.skip(f"this kernel has no 802.1Q VLAN support: {probe.stderr.strip()}")
    sh("ip", "-n", lab.host, "link", "del", "nvprobe.7")
    vlan_net = NetworkOnHost(uuid="net-2", label="vlan", cidr="10.252.0.0/24", gateway="10.252.0.1",
                             bridge="nvbr-vlan", dhcp_start="10.252.0.2", netmask="255.255.255.0",
                             vlan=42, interface="nvpub")
    state = dataclasses.replace(lab.state, networks=[*lab.state.networks, vlan_net])
    await lab.driver.apply(state)
    details = sh("ip", "-n", lab.host, "-d", "link", "show", "nvpub.42").stdout
    assert "vlan protocol 802.1Q id 42" in details and "master nvbr-vlan" in details
    await lab.driver.apply(lab.state)
    assert sh("ip", "-n", lab.host, "link", "show", "nvpub.42", check=False).returncode != 0
    assert sh("ip", "-n", lab.host, "link", "show", "nvbr-vlan", check=False).returncode != 0


async def test_removing_an_instance_removes_its_tap_rules_and_lease(lab: Lab) -> None:
    g1, g2 = lab.guests
    pid = lab.driver.dnsmasq.pid(BRIDGE)
    await lab.driver.unplug(g2.vif)
    assert g2.wire is not None
    g2.wire.close()
    g2.wire = None
    lab.state = make_state([g1])
    await lab.driver.apply(lab.state)
    assert sh("ip", "-n", lab.host, "link", "show", g2.vif.tap, check=False).returncode != 0
    assert f"instance-{g2.instance.instance_uuid}" not in lab.nft()
    assert g2.vif.address not in (lab.dnsmasq_dir / f"{BRIDGE}.hosts").read_text()
    new_pid = lab.driver.dnsmasq.pid(BRIDGE)
    assert new_pid is not None and new_pid != pid, "dnsmasq must forget the removed lease"
    assert ping(g1.ns, GATEWAY)


async def test_teardown_leaves_nothing_behind(lab: Lab) -> None:
    pid = lab.driver.dnsmasq.pid(BRIDGE)
    await lab.driver.teardown()
    links = sh("ip", "-n", lab.host, "-d", "link").stdout
    assert "novalet:" not in links and BRIDGE not in links and " tap" not in links
    assert "novalet" not in lab.nft()
    assert pid is not None and not alive(pid)
    assert not list(lab.dnsmasq_dir.iterdir())
    assert FLOATING not in sh("ip", "-n", lab.host, "addr", "show", "nvpub").stdout
    assert PUBLIC_HOST in sh("ip", "-n", lab.host, "addr", "show", "nvpub").stdout


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def _without_counters(ruleset: str) -> str:
    import re
    return re.sub(r"counter packets \d+ bytes \d+", "counter", ruleset)
