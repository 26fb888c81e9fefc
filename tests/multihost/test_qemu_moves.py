"""Real QEMU guests moving between three compute hosts of a multi-process cloud
(issue 16), through the real `openstack` CLI.

Each host is its own network namespace (tests/multihost/qemu_hosts.py) with its
own compute and network service processes and its own state and instance
directory (no shared storage), over RabbitMQ and PostgreSQL. One multi_host
FlatDHCP network: every host serves its own guests (bridge, dnsmasq, gateway,
firewall), the hosts' bridges joined by a switch the test reaches the guests'
fixed IPs on. Floating IPs are put on the guest's host's management interface
(`[network] public_interface`), which the test reaches them through.

Each host runs a metadata service of its own, which its network service sends its
guests' 169.254.169.254 to; the guests ask it for their uuid at every boot (they
read the rest from their config drive).
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.multihost.conftest import Cloud, deployment, wait_for
from tests.multihost.qemu_hosts import (MGMT_SWITCH, UPLINK, HostNamespaces, NetHost,
                                        OpenStackCLI, add_default_rule, console,
                                        host_namespaces, netns_of, pings, place_image,
                                        published_image_id, qemu_pids, sh, small_flavor,
                                        start_metadata, user_data)

pytestmark = pytest.mark.integration

HOSTS = ["qemu-a", "qemu-b", "qemu-c"]
SLOW_HOST = "qemu-c"  # its live migrations are capped at 1 MiB/s: they can be aborted
BRIDGE = "nvbrmv"
FIXED_RANGE = "10.234.0.0/24"
SWITCH_CIDR = "10.234.0.250/24"  # the test's own address on the guests' LAN
FLOATING_POOL = "172.31.234.0/28"
METADATA_PORT = 8775  # each host's own metadata service, in its namespace
OPEN_PORT, CLOSED_PORT = 8080, 8081  # both served by the guest; only the first allowed

# Runs at every boot (appended to rcS, after the agent; at the first boot the user
# data runs it, and rcS, read as it runs, once more): starts the
# guest's web servers and reports its address, the mark its disk holds and the uuid
# its host's metadata service gives it.
REPORT_SCRIPT = f"""#!/bin/sh
[ -e /run/report-httpd ] || {{ touch /run/report-httpd; httpd -p {OPEN_PORT} -h /root/www
httpd -p {CLOSED_PORT} -h /root/www; }}
meta=$(timeout 5 wget -qO- http://169.254.169.254/openstack/latest/meta_data.json | \
grep -o '"uuid": *"[^"]*"' | head -n 1 | cut -d '"' -f 4)
echo "NOVALET-REPORT addr=$(ip -4 -o addr show eth0 | \
sed -n 's/.*inet \\([0-9.]*\\).*/\\1/p') mark=$(cat /root/mark) meta=${{meta:-none}}" >/dev/ttyS0
"""
# Runs once per instance (the agent): a random mark written to the disk.
USER_DATA = f"""#!/bin/sh
mkdir -p /root/www
[ -s /root/mark ] || head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \\n' >/root/mark
cp /root/mark /root/www/index.html
cat >/root/report.sh <<'EOF'
{REPORT_SCRIPT}EOF
chmod +x /root/report.sh
echo /root/report.sh >>/etc/init.d/rcS
sync
/root/report.sh
"""


class Phases:
    """Prints how long each phase of the fixture and the tests took."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        print(f"[{name}: {now - self.last:.1f}s]")
        self.last = now


@dataclass
class Moves:
    cloud: Cloud
    nets: HostNamespaces
    cli: OpenStackCLI
    phase: Phases
    root: Path  # the deployment's: ROOT/HOST is a host's state directory

    def host(self, name: str) -> NetHost:
        return self.nets.hosts[name]

    def server(self, server_id: str) -> dict[str, Any]:
        return dict(self.cloud.api("GET", f"/servers/{server_id}").json()["server"])

    def boot(self, name: str, host: str, script: str = USER_DATA) -> str:
        body = {"server": {"name": name, "imageRef": published_image_id(self.cloud),
                           "flavorRef": small_flavor(self.cloud), "networks": "auto",
                           "availability_zone": f"nova:{host}",
                           "user_data": user_data(script)}}
        resp = self.cloud.api("POST", "/servers", json=body)
        assert resp.status_code == 202, resp.text
        server_id = str(resp.json()["server"]["id"])
        server = self.settled(server_id, "ACTIVE", 240)
        assert server["OS-EXT-SRV-ATTR:host"] == host
        return server_id

    def settled(self, server_id: str, status: str, timeout: float = 240) -> dict[str, Any]:
        """The server once it shows `status` with no task_state."""
        def done() -> dict[str, Any] | None:
            server = self.server(server_id)
            assert server["status"] != "ERROR", server.get("fault")
            if server["status"] == status and not server["OS-EXT-STS:task_state"]:
                return server
            return None
        found: dict[str, Any] = wait_for(done, timeout, f"{server_id} never got {status}")
        return found

    def report(self, server_id: str, timeout: float = 240) -> dict[str, str]:
        """The guest's last NOVALET-REPORT line on its console: its address, its mark and
        the uuid the metadata service of its host gave it."""
        def last() -> dict[str, str] | None:
            found = re.findall(r"NOVALET-REPORT addr=(\S*) mark=(\S*) meta=(\S*)",
                               console(self.cloud, server_id))
            return dict(zip(("addr", "mark", "meta"), found[-1], strict=True)) if found else None
        reported: dict[str, str] = wait_for(last, timeout, "the guest never reported")
        return reported

    def floating_ip(self, server_id: str) -> str:
        floating = self.cloud.api("POST", "/os-floating-ips", version="2.35",
                                  json={"pool": "public"}).json()["floating_ip"]
        resp = self.cloud.api("POST", f"/servers/{server_id}/action", version="2.35",
                              json={"addFloatingIp": {"address": floating["ip"]}})
        assert resp.status_code == 202, resp.text
        return str(floating["ip"])

    def tap(self, server_id: str) -> str:
        ports = self.cloud.api("GET", f"/servers/{server_id}/os-interface").json()
        return "tap" + ports["interfaceAttachments"][0]["port_id"][:11]

    def delete(self, server_id: str) -> None:
        self.cloud.api("DELETE", f"/servers/{server_id}")
        wait_for(lambda: self.cloud.api("GET", f"/servers/{server_id}").status_code == 404,
                 120, f"{server_id} was not deleted")


@pytest.fixture(scope="module")
def moves(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str],
          guest_image: Any) -> Iterator[Moves]:
    phase = Phases()
    root = tmp_path_factory.mktemp("multihost-moves")
    place_image(guest_image, root / "controller")
    rabbit_port = urlsplit(backing["NOVALET_TEST_TRANSPORT_URL"]).port or 5672
    with host_namespaces(HOSTS, SWITCH_CIDR, root) as nets:
        sh("ip", "route", "add", FLOATING_POOL, "dev", MGMT_SWITCH)
        phase("namespaces")

        def forward(dep: Any) -> None:
            nets.forward(rabbit_port)
            nets.forward(urlsplit(backing["NOVALET_TEST_PG_URL"]).port or 5432)
            nets.forward(dep.port)

        for dep, database in deployment(
                root, backing, HOSTS, prepare=forward,
                options={"DEFAULT": {"force_config_drive": True, "shelved_offload_time": -1},
                         "network": {"fixed_range": FIXED_RANGE, "flat_network_bridge": BRIDGE,
                                     "flat_interface": UPLINK, "multi_host": True,
                                     "public_interface": "nvmgmt",
                                     "floating_ip_pools": f"public={FLOATING_POOL}"}},
                host_options={host: _host_options(nets.hosts[host]) for host in HOSTS},
                host_prefix={host: nets.hosts[host].prefix for host in HOSTS}):
            for host in HOSTS:
                dep.start("network", host)
                start_metadata(dep, nets.hosts[host], METADATA_PORT)
            cloud = Cloud(dep, database)
            phase("services")
            add_default_rule(cloud, "icmp", -1, -1)
            add_default_rule(cloud, "tcp", OPEN_PORT, OPEN_PORT)
            moves = Moves(cloud, nets, OpenStackCLI(cloud, root), phase, root)
            try:
                yield moves
            finally:
                _tear_down(moves)


def _host_options(host: NetHost) -> dict[str, dict[str, Any]]:
    qemu: dict[str, Any] = {"live_migration_inbound_addr": host.mgmt_address}
    if host.name == SLOW_HOST:
        qemu["live_migration_bandwidth"] = 1
    return {"DEFAULT": {"compute_driver": "qemu"}, "qemu": qemu,
            "metadata": {"port": METADATA_PORT}}


def _tear_down(moves: Moves) -> None:
    """Servers, then the network (its bridges and dnsmasq in each namespace), then
    whatever still runs in the namespaces (nothing should)."""
    cloud = moves.cloud
    cloud.delete_all()
    for network in cloud.api("GET", "/os-networks", version="2.35").json()["networks"]:
        cloud.api("DELETE", f"/os-networks/{network['id']}", version="2.35")
    for host in moves.nets.hosts.values():
        wait_for(lambda h=host: BRIDGE not in h.links(), 30,  # type: ignore[misc]
                 f"{BRIDGE} left behind in {host.netns}")
    moves.phase("teardown")


def _leftovers(netns: str) -> list[str]:
    return sh("ip", "netns", "pids", netns, check=False).stdout.split()


def mac_and_ip(server: dict[str, Any]) -> tuple[str, str]:
    (address,) = [a for net in server["addresses"].values() for a in net
                  if a["OS-EXT-IPS:type"] == "fixed"]
    return address["OS-EXT-IPS-MAC:mac_addr"], address["addr"]


def http_get(address: str, port: int) -> str:
    return httpx.get(f"http://{address}:{port}/", timeout=3).text.strip()


def connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def booted(moves: Moves, server_id: str, boot: int) -> dict[str, str]:
    """The guest's report after it said it booted its disk the `boot`th time (a cold
    move restarts it from its copied disk: the count is on that disk)."""
    def reported() -> dict[str, str] | None:
        text = console(moves.cloud, server_id).replace("\r", "")
        _, seen, after = text.rpartition(f"boot={boot}\n")
        found = re.findall(r"NOVALET-REPORT addr=(\S*) mark=(\S*) meta=(\S*)", after)
        if not seen or not found:
            return None
        return dict(zip(("addr", "mark", "meta"), found[-1], strict=True))
    report: dict[str, str] = wait_for(reported, 240,
                                      f"no report after boot {boot} of the guest's disk")
    return report


def check_networking_follows(moves: Moves, server_id: str, fixed: str, floating: str
                             ) -> None:
    """The guest answers at its fixed and floating IPs from its new host, and its
    security group applies there."""
    wait_for(lambda: pings(fixed), 60, f"no answer at the fixed IP {fixed}")
    # the test's namespace cached the old host's MAC for the floating IP: the new
    # host's gratuitous ARP updates it (else it would take 30 s or more)
    wait_for(lambda: pings(floating), 15, f"no answer at the floating IP {floating}")
    mark = moves.report(server_id)["mark"]
    assert http_get(floating, OPEN_PORT) == mark  # the allowed port, NATed to the guest
    assert not connects(floating, CLOSED_PORT)  # served by the guest, not allowed
    assert not connects(fixed, CLOSED_PORT)


def check_nothing_left_on(moves: Moves, server_id: str, floating: str, old: str) -> None:
    """`old`, a host the guest left, has no tap, firewall rule or address of it."""
    tap = moves.tap(server_id)
    old_host = moves.host(old)
    wait_for(lambda: tap not in old_host.links(), 30, f"{old} kept the tap {tap}")
    wait_for(lambda: tap not in old_host.ruleset() and floating not in old_host.ruleset(),
             30, f"{old}'s firewall still has rules for {tap} or {floating}")
    wait_for(lambda: f"inet {floating}/" not in sh("ip", "-n", old_host.netns, "addr").stdout,
             30, f"{old} still holds the floating IP {floating}")


def test_evacuate_after_kill_9_of_the_hosts_compute(moves: Moves) -> None:
    cloud, cli = moves.cloud, moves.cli
    server_id = moves.boot("mv-evacuee", "qemu-a")
    mac, fixed = mac_and_ip(moves.server(server_id))
    assert moves.report(server_id) | {"mark": ""} == {"addr": fixed, "mark": "",
                                                      "meta": server_id}
    floating = moves.floating_ip(server_id)
    wait_for(lambda: pings(floating), 60, f"no answer at the floating IP {floating}")
    moves.phase("evacuee booted")

    cloud.d.kill("compute", "qemu-a")
    (stale_qemu,) = qemu_pids(server_id)  # daemonized: it outlives its compute
    cli("compute", "service", "set", "--down", "qemu-a", "nova-compute", version="2.11")
    # No --wait: python-openstackclient 10.5 waits for a lower-cased "ACTIVE" here
    cli("server", "evacuate", server_id, version="2.29")
    server = moves.settled(server_id, "ACTIVE")
    new_host = server["OS-EXT-SRV-ATTR:host"]
    assert new_host in ("qemu-b", "qemu-c")
    assert mac_and_ip(server) == (mac, fixed)
    # DHCP and metadata from its new host
    assert moves.report(server_id) | {"mark": ""} == {"addr": fixed, "mark": "",
                                                      "meta": server_id}
    moves.phase(f"evacuated to {new_host}")
    # its failed host's network service (alive) stops serving the stale guest there
    old, tap = moves.host("qemu-a"), moves.tap(server_id)
    wait_for(lambda: floating not in old.ruleset() and f'"{tap}" : drop' in old.ruleset(),
             15, "qemu-a still NATs the evacuee's floating IP or lets its stale guest talk")
    check_networking_follows(moves, server_id, fixed, floating)
    moves.phase("networking followed")

    cloud.d.start("compute", "qemu-a")  # the dead host's compute comes back
    wait_for(lambda: stale_qemu not in qemu_pids(server_id), 60,
             "the restarted compute left the evacuated guest's QEMU running")
    (running,) = qemu_pids(server_id)
    assert netns_of(running) == netns_of_host(moves.host(new_host))
    check_nothing_left_on(moves, server_id, floating, "qemu-a")
    migrations = cli.json("server", "migration", "list", "--server", server_id,
                          version="2.23")
    assert [(m["Type"], m["Status"]) for m in migrations] == [("evacuation", "completed")]
    cli("compute", "service", "set", "--up", "qemu-a", "nova-compute", version="2.11")
    # the cleanup on qemu-a cost the guest nothing (a reply may be late: its vCPU
    # shares two cores with every other guest and service here)
    wait_for(lambda: pings(fixed), 10, f"the guest at {fixed} stopped answering")
    moves.phase("old host cleaned up")
    moves.delete(server_id)


def netns_of_host(host: NetHost) -> str:
    """The namespace identity (as /proc/PID/ns/net reads) of `host`."""
    (pid,) = _leftovers(host.netns)[:1] or [""]
    return netns_of(int(pid))


def test_shelve_offload_and_unshelve_onto_another_host(moves: Moves) -> None:
    cli = moves.cli
    server_id = moves.boot("mv-shelved", "qemu-b")
    _, fixed = mac_and_ip(moves.server(server_id))
    before = moves.report(server_id)
    floating = moves.floating_ip(server_id)
    wait_for(lambda: pings(floating), 60, f"no answer at the floating IP {floating}")
    moves.phase("shelvee booted")

    cli("server", "shelve", "--offload", "--wait", server_id)  # shelve, then offload
    shelved = moves.server(server_id)
    assert shelved["status"] == "SHELVED_OFFLOADED"
    assert shelved["OS-EXT-SRV-ATTR:host"] is None
    assert not qemu_pids(server_id)
    moves.phase("shelved and offloaded")

    cli("server", "unshelve", "--host", "qemu-c", "--wait", server_id, version="2.91")
    server = moves.settled(server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == "qemu-c"
    assert mac_and_ip(server)[1] == fixed
    after = booted(moves, server_id, 2)  # its disk, from the snapshot, booted again
    # with its data; the metadata service of its new host answers it
    assert after == {"addr": fixed, "mark": before["mark"], "meta": server_id}
    moves.phase("unshelved on qemu-c")
    check_networking_follows(moves, server_id, fixed, floating)
    check_nothing_left_on(moves, server_id, floating, "qemu-b")
    moves.phase("networking followed")
    moves.delete(server_id)


# --- live migration, cold migration and resize ------------------------------------

COUNTER = "( i=0; while :; do echo NOVALET-COUNT $i; i=$((i+1)); usleep 100000; done " \
          ">/dev/ttyS0 ) &\n"
TICKER = ("cat >/root/tick.sh <<'EOF'\n#!/bin/sh\nwhile :; do echo TICK; sleep 1; done\n"
          "EOF\nchmod +x /root/tick.sh\n"
          "( while :; do nc -l -p 7000 -e /root/tick.sh; done ) &\n")


def listener_data() -> str:
    """The migrating guest: counts on its console every 100 ms, serves a TCP stream."""
    return USER_DATA + COUNTER + TICKER


def client_data(address: str) -> str:
    """Another guest: holds one TCP connection to `address`, printing what it gets."""
    return (USER_DATA + f"( nc {address} 7000 | while read -r line; do "
            f"echo NOVALET-GOT $line >/dev/ttyS0; done; echo NOVALET-NC-CLOSED >/dev/ttyS0 ) &\n")


def counts(moves: Moves, server_id: str) -> list[int]:
    return [int(n) for n in re.findall(r"NOVALET-COUNT (\d+)", console(moves.cloud, server_id))]


def console_via_cli(moves: Moves, server_id: str) -> str:
    return moves.cli("console", "log", "show", server_id)


def test_live_migration_keeps_the_guest_running(moves: Moves) -> None:
    cli = moves.cli
    add_default_rule(moves.cloud, "tcp", 7000, 7000)
    server_id = moves.boot("mv-live", "qemu-a", listener_data())
    _, fixed = mac_and_ip(moves.server(server_id))
    before = moves.report(server_id)
    client = moves.boot("mv-client", "qemu-b", client_data(fixed))
    wait_for(lambda: console(moves.cloud, client).count("NOVALET-GOT TICK") >= 2, 60,
             "the other guest never got its TCP stream")
    wait_for(lambda: len(counts(moves, server_id)) > 10, 60, "the guest does not count")
    moves.phase("guests booted")

    last_before = counts(moves, server_id)[-1]
    ping = subprocess.Popen(["ping", "-n", "-i", "0.05", "-W", "1", fixed],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    cli("server", "migrate", "--live-migration", "--host", "qemu-c", "--block-migration",
        "--wait", server_id, version="2.30")
    took = time.monotonic() - started
    time.sleep(2)
    ping.send_signal(2)
    output, _ = ping.communicate(timeout=10)
    server = moves.settled(server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == "qemu-c"
    lost = _lost_pings(output)
    print(f"live migration: {took:.2f}s through the CLI; {lost} pings of 50 ms lost "
          f"(downtime under {(lost + 1) * 50} ms)")

    seen = [int(n) for n in re.findall(r"NOVALET-COUNT (\d+)",
                                       console_via_cli(moves, server_id))]
    assert seen and seen[-1] > last_before, "no counter on the console log of the new host"
    assert all(b > a for a, b in zip(seen, seen[1:], strict=False)), "the counter restarted"
    wait_for(lambda: counts(moves, server_id)[-1] > seen[-1] + 5, 30,
             "the counter stopped after the migration")
    assert http_get(fixed, OPEN_PORT) == before["mark"]  # the file written before
    ticks = console(moves.cloud, client).count("NOVALET-GOT TICK")
    wait_for(lambda: console(moves.cloud, client).count("NOVALET-GOT TICK") > ticks + 2, 30,
             "the TCP connection from the other guest did not survive")
    assert "NOVALET-NC-CLOSED" not in console(moves.cloud, client)
    moves.phase("live migration")
    moves.delete(client)
    moves.delete(server_id)


def _lost_pings(output: str) -> int:
    found = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert found, output
    return int(found.group(1)) - int(found.group(2))


def test_abort_of_a_live_migration_leaves_the_guest_on_its_source(moves: Moves) -> None:
    cli = moves.cli
    dirtying = USER_DATA + COUNTER + (
        "( while :; do dd if=/dev/urandom of=/dev/shm/dirt bs=1M count=32 2>/dev/null; "
        "done ) &\n")
    server_id = moves.boot("mv-abort", SLOW_HOST, dirtying)
    _, fixed = mac_and_ip(moves.server(server_id))
    mark = moves.report(server_id)["mark"]
    moves.phase("dirtying guest booted")

    cli("server", "migrate", "--live-migration", "--host", "qemu-a", "--block-migration",
        server_id, version="2.30")

    def running_migration() -> str | None:
        found = cli.json("server", "migration", "list", "--server", server_id,
                         version="2.59")
        return next((str(m["Id"]) for m in found if m["Status"] == "running"), None)
    migration = wait_for(running_migration, 60, "the live migration never ran")

    def progress() -> dict[str, Any] | None:
        """The running migration as the API shows it, once its source reported bytes."""
        shown = moves.cloud.api("GET", f"/servers/{server_id}/migrations/{migration}",
                                version="2.59").json()["migration"]
        return shown if shown["memory_processed_bytes"] else None
    shown = wait_for(progress, 30, "the migration never showed its progress")
    assert 0 < shown["memory_processed_bytes"] and 0 < shown["memory_total_bytes"]
    assert shown["disk_total_bytes"] > 0  # block migration: the disks are copied too
    cli("server", "migration", "abort", server_id, migration, version="2.24")
    server = moves.settled(server_id, "ACTIVE", 120)
    assert server["OS-EXT-SRV-ATTR:host"] == SLOW_HOST
    # (`server migration show` lists only migrations under way, as Nova's API does)
    listed = cli.json("server", "migration", "list", "--server", server_id, version="2.59")
    assert [m["Status"] for m in listed if str(m["Id"]) == migration] == ["cancelled"]
    (pid,) = qemu_pids(server_id)
    assert netns_of(pid) == netns_of_host(moves.host(SLOW_HOST))
    last = counts(moves, server_id)[-1]
    wait_for(lambda: counts(moves, server_id)[-1] > last + 5, 30,
             "the guest stopped counting on its source")
    assert http_get(fixed, OPEN_PORT) == mark
    moves.phase("aborted live migration")
    moves.delete(server_id)


def test_cold_migrate_and_resize_confirm_and_revert(moves: Moves) -> None:
    cli, cloud = moves.cli, moves.cloud
    bigger = small_flavor(cloud, "t.small.2", disk=2)
    server_id = moves.boot("mv-cold", "qemu-a")
    _, fixed = mac_and_ip(moves.server(server_id))
    mark = moves.report(server_id)["mark"]
    moves.phase("cold guest booted")

    cli("server", "migrate", "--host", "qemu-b", "--wait", server_id, version="2.56")
    server = moves.settled(server_id, "VERIFY_RESIZE")
    assert server["OS-EXT-SRV-ATTR:host"] == "qemu-b"
    cli("server", "resize", "confirm", server_id)
    moves.settled(server_id, "ACTIVE")
    assert booted(moves, server_id, 2) == {"addr": fixed, "mark": mark, "meta": server_id}
    wait_for(lambda: not (moves.root / "qemu-a" / "instances" / server_id).exists(), 30,
             "confirm left the guest's files on its source")
    moves.phase("cold migration confirmed")

    cli("server", "resize", "--flavor", bigger, "--wait", server_id)
    server = moves.settled(server_id, "VERIFY_RESIZE")
    assert server["OS-EXT-SRV-ATTR:host"] != "qemu-b"
    cli("server", "resize", "revert", server_id)
    server = moves.settled(server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == "qemu-b"
    assert server["flavor"]["original_name"] == "t.small"
    # the resized copy booted once (3), then the source's disk again, unchanged (3)
    assert booted(moves, server_id, 3) == {"addr": fixed, "mark": mark, "meta": server_id}
    moves.phase("resize reverted")

    cli("server", "resize", "--flavor", bigger, "--wait", server_id)
    server = moves.settled(server_id, "VERIFY_RESIZE")
    resized_on = server["OS-EXT-SRV-ATTR:host"]
    assert resized_on != "qemu-b"
    cli("server", "resize", "confirm", server_id)
    server = moves.settled(server_id, "ACTIVE")
    assert server["flavor"]["original_name"] == "t.small.2"
    assert booted(moves, server_id, 4) == {"addr": fixed, "mark": mark, "meta": server_id}
    assert pings(fixed)
    moves.phase("resize confirmed")
    moves.delete(server_id)


