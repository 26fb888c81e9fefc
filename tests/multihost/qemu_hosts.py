"""Real QEMU guests in multi-process clouds: the test image where the API publishes
it, guests that report on their serial console, and compute hosts of their own
network namespaces joined by a switch, as machines on one LAN are.

Why namespaces: a host's network service owns its kernel's bridges, taps and
nftables (one per namespace, network/linux/driver.py), so several hosts with
real guests on one machine need a namespace each. Each gets:

- `nvup`, the uplink of its guest network (`[network] flat_interface`): a veth
  whose other end is on the root namespace's switch bridge, which also has an
  address in the guests' network (the test reaches guests from there);
- `nvmgmt`, a management address on a second switch (where other hosts send it
  migrating guests: `[qemu] live_migration_inbound_addr`);
- its loopback ports of RabbitMQ, PostgreSQL and the API forwarded to the root
  namespace's (socat over unix sockets): its services use the controller's URLs
  unchanged;
- a metadata service of its own (`start_metadata`), which its network service's
  DNAT for 169.254.169.254 sends its guests to, as on nova-network's multi_host
  hosts.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novalet.image.testimage import builder
from novalet.service.local_deployment import LocalDeployment, Process
from tests import cli_forkserver
from tests.multihost.conftest import Cloud, wait_for


# The guest reports the address DHCP gave it on its serial console.
ADDR_LINE = ("echo NOVALET-ADDR $(ip -4 -o addr show eth0 | "
             "sed -n 's/.*inet \\([0-9.]*\\).*/\\1/p') >/dev/ttyS0")
USER_DATA = f"#!/bin/sh\n{ADDR_LINE}\n"


def place_image(guest_image: Path, state: Path) -> None:
    """Where the API's first start finds the test image and publishes it."""
    target = builder.default_output(state)
    target.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in ((guest_image, target),
                     (builder.kernel_path(guest_image), builder.kernel_path(target)),
                     (builder.ramdisk_path(guest_image), builder.ramdisk_path(target))):
        shutil.copyfile(src, dst)


def published_image_id(cloud: Cloud) -> str:
    images = cloud.http.get("/image/v2/images?name=novalet-tiny",
                            headers=cloud.headers).json()["images"]
    assert images, "the API did not publish the test image"
    return str(images[0]["id"])


def user_data(script: str) -> str:
    return base64.b64encode(script.encode()).decode()


def allow_ping_from_the_host(cloud: Cloud) -> None:
    add_default_rule(cloud, "icmp", -1, -1)


def add_default_rule(cloud: Cloud, protocol: str, from_port: int, to_port: int) -> None:
    """A rule of the default security group from anywhere (once)."""
    groups = cloud.api("GET", "/os-security-groups", version="2.35").json()
    default = next(g for g in groups["security_groups"] if g["name"] == "default")
    if any(r["ip_protocol"] == protocol and r["from_port"] == from_port
           for r in default["rules"]):
        return
    resp = cloud.api("POST", "/os-security-group-rules", version="2.35", json={
        "security_group_rule": {"parent_group_id": default["id"], "ip_protocol": protocol,
                                "from_port": from_port, "to_port": to_port,
                                "cidr": "0.0.0.0/0"}})
    assert resp.status_code == 200, resp.text


def small_flavor(cloud: Cloud, name: str = "t.small", disk: int = 1) -> str:
    for flavor in cloud.api("GET", "/flavors").json()["flavors"]:
        if flavor["name"] == name:
            return str(flavor["id"])
    return str(cloud.api("POST", "/flavors", json={"flavor": {
        "name": name, "ram": 128, "vcpus": 1, "disk": disk}}).json()["flavor"]["id"])


def pings(address: str, netns: str | None = None) -> bool:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "ping", "-c1", "-W1", address],
                          capture_output=True).returncode == 0


def console(cloud: Cloud, server_id: str) -> str:
    resp = cloud.api("POST", f"/servers/{server_id}/action",
                     json={"os-getConsoleOutput": {}})
    return str(resp.json().get("output", ""))


def reported_address(cloud: Cloud, server_id: str, timeout: float = 180) -> str:
    """The address the guest's user data printed (once it did)."""
    found = wait_for(lambda: re.search(r"NOVALET-ADDR (\d\S+)", console(cloud, server_id)),
                     timeout, "the guest never reported its address")
    return str(found.group(1))


# --- hosts of their own network namespaces ----------------------------------------

SWITCH = "nvswmv"          # the guests' LAN between the hosts (root namespace)
MGMT_SWITCH = "nvmgmv"     # the hosts' management LAN
MGMT_NET = "10.235.0"
UPLINK = "nvup"            # a host's end of the guests' LAN


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


@dataclass
class NetHost:
    """A compute host with a network namespace of its own."""

    name: str
    netns: str
    mgmt_address: str

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    def links(self) -> set[str]:
        out = sh("ip", "-n", self.netns, "-j", "link", "show").stdout
        return {link["ifname"] for link in json.loads(out)}

    def ruleset(self) -> str:
        return sh(*self.prefix, "nft", "list", "ruleset").stdout


@dataclass
class HostNamespaces:
    hosts: dict[str, NetHost]
    switch_address: str
    socket_dir: Path
    forwarders: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def forward(self, port: int) -> None:
        """127.0.0.1:`port` of every host's namespace reaches the root namespace's."""
        path = self.socket_dir / f"{port}.sock"
        self.forwarders.append(subprocess.Popen(
            ["socat", f"UNIX-LISTEN:{path},fork,unlink-early", f"TCP:127.0.0.1:{port}"]))
        wait_for(path.exists, 10, f"socat made no {path}")
        for host in self.hosts.values():
            self.forwarders.append(subprocess.Popen(
                [*host.prefix, "socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                 f"UNIX-CONNECT:{path}"]))
        for host in self.hosts.values():
            wait_for(lambda h=host: _listens(h, port), 10,  # type: ignore[misc]
                     f"nothing listens on {port} in {host.netns}")


def start_metadata(dep: LocalDeployment, host: NetHost, port: int) -> None:
    """`novalet metadata` in `host`'s namespace on 127.0.0.1:`port`, with the
    controller's database (as nova-api-metadata on a multi_host compute host)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read(dep.conf_of("controller"))
    conf["DEFAULT"]["host"] = host.name
    conf.set("metadata", "listen", "127.0.0.1")
    conf.set("metadata", "port", str(port))
    path = dep.root / f"metadata-{host.name}.conf"
    with open(path, "w") as out:
        conf.write(out)
    name = f"metadata@{host.name}"
    proc = Process(name, path, dep.root / f"metadata-{host.name}.log")
    dep.processes[name] = proc
    dep.start("metadata", host.name, wait=False)  # (it logs no "is running" line)
    wait_for(lambda: proc.log.exists() and b"Metadata service listening" in
             proc.log.read_bytes(), 60, f"{name} did not start:\n{dep.tail(proc)}")


def _listens(host: NetHost, port: int) -> bool:
    return f"127.0.0.1:{port} " in sh(*host.prefix, "ss", "-Hltn").stdout


@contextmanager
def host_namespaces(names: list[str], switch_cidr: str, root: Path
                    ) -> Iterator[HostNamespaces]:
    """A namespace per host name, joined by the switches (see the module docstring);
    `switch_cidr`: the root namespace's address on the guests' LAN. All removed after."""
    tag = f"{os.getpid() % 10000}"
    hosts = {name: NetHost(name, f"nvmv{tag}-{i}", f"{MGMT_NET}.{i + 1}")
             for i, name in enumerate(names)}
    socket_dir = root / "forward"
    socket_dir.mkdir(parents=True, exist_ok=True)
    made = HostNamespaces(hosts, switch_cidr.split("/")[0], socket_dir)
    with ExitStack() as undo:
        undo.callback(_remove_links, [SWITCH, MGMT_SWITCH])
        for bridge, address in ((SWITCH, switch_cidr), (MGMT_SWITCH, f"{MGMT_NET}.254/24")):
            sh("ip", "link", "add", bridge, "type", "bridge")
            sh("ip", "addr", "add", address, "dev", bridge)
            sh("ip", "link", "set", bridge, "up")
        for i, host in enumerate(hosts.values()):
            undo.callback(sh, "ip", "netns", "delete", host.netns, check=False)
            undo.callback(_kill_all_in, host.netns)
            undo.callback(_remove_links, [f"nvs{tag}-{i}", f"nvm{tag}-{i}"])
            sh("ip", "netns", "add", host.netns)
            sh("ip", "-n", host.netns, "link", "set", "lo", "up")
            for outer, inner, bridge in ((f"nvs{tag}-{i}", UPLINK, SWITCH),
                                         (f"nvm{tag}-{i}", "nvmgmt", MGMT_SWITCH)):
                sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner,
                   "netns", host.netns)
                sh("ip", "link", "set", outer, "master", bridge, "up")
                sh("ip", "-n", host.netns, "link", "set", inner, "up")
            sh("ip", "-n", host.netns, "addr", "add", f"{host.mgmt_address}/24", "dev", "nvmgmt")
        undo.callback(_stop, made.forwarders)
        yield made


def _kill_all_in(netns: str) -> None:
    """What a failed test left running in `netns` (a guest whose compute was killed,
    say): only this fixture's services and their children run there."""
    pids = sh("ip", "netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        print(f"killing process {pid} left in {netns}: "
              f"{Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}")
        sh("kill", "-9", pid, check=False)


def _remove_links(names: list[str]) -> None:
    for name in names:
        sh("ip", "link", "delete", name, check=False)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        proc.terminate()
    for proc in processes:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def qemu_pids(uuid: str) -> list[int]:
    """Pids of QEMU processes running guest `uuid` (on any host of this machine)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and b"qemu-system" in cmdline[0] and uuid.encode() in b" ".join(cmdline):
            found.append(int(proc.name))
    return found


def netns_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


class OpenStackCLI:
    """The real `openstack` CLI as the cloud's admin."""

    def __init__(self, cloud: Cloud, state: Path) -> None:
        self.config = state / "clouds.yaml"
        self.config.write_text(json.dumps({"clouds": {"admin": {
            "auth": {"auth_url": f"{cloud.d.url}/identity/v3", "username": "admin",
                     "password": "admin", "project_name": "admin",
                     "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": "RegionOne", "identity_api_version": 3}}}))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env["OS_CLIENT_CONFIG_FILE"] = str(self.config)

    def __call__(self, *args: str, version: str | None = None, timeout: float = 300
                 ) -> str:
        cmd = ["--os-cloud", "admin"]
        if version:
            cmd += ["--os-compute-api-version", version]
        started = time.monotonic()
        result = cli_forkserver.run([*cmd, *args], self.env, timeout=timeout)
        print(f"  openstack {' '.join(args)}: {time.monotonic() - started:.1f}s")
        assert result.returncode == 0, (f"openstack {' '.join(args)} failed:\n"
                                        f"{result.stdout}\n{result.stderr}")
        return result.stdout

    def json(self, *args: str, version: str | None = None) -> Any:
        return json.loads(self(*args, "-f", "json", version=version))
