"""Issue 17 end to end: real QEMU guests on a project network built with the
`openstack` CLI through the network API (network, subnet, router with its external
gateway and an interface, security group and rule, port), booted with `--nic
port-id` and `--nic net-id`. The guests get their addresses by DHCP, reach the
outside through their router's SNAT, are reached from the outside through a floating
IP, and stop being reached when the rule or the floating IP goes. openstacksdk's
cloud layer then boots one with `auto_ip=True` on that network (the second test
uses the first one's network, group and router).

"The outside" is a network namespace behind a veth pair, the host's
`public_interface`: the external network's addresses (floating IPs, the router's
gateway) are on its link, so the outside reaches them as a neighbour would."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest

from tests.integration.conftest import RunningCloud, delete_servers, qemu_cloud
from tests.integration.test_guest_networking import boot, fixed_ip, wait_console
from tests.integration.test_linux_net import in_netns, sh

pytestmark = pytest.mark.integration

OUTSIDE_NS = "nvout-e2e"
PUBLIC_LINK = "nvoute2e"  # the host's end of the veth: [network] public_interface
HOST_ON_LINK, OUTSIDE = "192.168.251.1", "192.168.251.2"
CONF = f"""[DEFAULT]
compute_driver = qemu
force_config_drive = false
[network]
fixed_range = 10.233.0.0/24
flat_network_bridge = nvbre2e
floating_ip_pools = public=192.168.251.32/28
public_interface = {PUBLIC_LINK}
"""
SUBNET = "10.78.0.0/24"
# A guest's web page, and a loop printing the address the outside sees it from.
GUEST = """#!/bin/sh
mkdir -p /www && echo guest-{name}-ok > /www/ok
busybox httpd -p 8000 -h /www
(while true; do
  seen=$(timeout 3 wget -q -O - http://{outside}:8000/whoami 2>/dev/null || echo blocked)
  echo "NOVALET-OUT $seen" >/dev/ttyS0
  sleep 1; done) &
"""
WHOAMI = """import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
        self.wfile.write(self.client_address[0].encode())
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], 8000), H).serve_forever()
"""


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The outside namespace with a web server answering the caller's address."""
    sh("ip", "netns", "delete", OUTSIDE_NS, check=False)
    sh("ip", "link", "delete", PUBLIC_LINK, check=False)
    sh("ip", "netns", "add", OUTSIDE_NS)
    server = None
    try:
        sh("ip", "link", "add", PUBLIC_LINK, "type", "veth", "peer", "name", "eth0",
           "netns", OUTSIDE_NS)
        sh("ip", "addr", "add", f"{HOST_ON_LINK}/24", "dev", PUBLIC_LINK)
        sh("ip", "link", "set", PUBLIC_LINK, "up")
        for argv in (("addr", "add", f"{OUTSIDE}/24", "dev", "eth0"),
                     ("link", "set", "eth0", "up"), ("link", "set", "lo", "up")):
            sh("ip", "-n", OUTSIDE_NS, *argv)
        script = tmp_path_factory.mktemp("outside") / "whoami.py"
        script.write_text(WHOAMI)
        server = subprocess.Popen(["ip", "netns", "exec", OUTSIDE_NS, sys.executable,
                                   str(script), OUTSIDE])
        yield
    finally:
        if server is not None:
            server.kill()
            server.wait()
        sh("ip", "link", "delete", PUBLIC_LINK, check=False)
        sh("ip", "netns", "delete", OUTSIDE_NS, check=False)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path, outside: None
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("netapi-guests"), guest_image, CONF,
                    ["nvbre2e"]) as running:
        try:
            yield running
        finally:
            remove_project_network(running)


def remove_project_network(cloud: RunningCloud) -> None:
    """What the test made that holds its network: servers, floating IPs, routers,
    ports (qemu_cloud then deletes the networks)."""
    delete_servers(cloud)
    conn = connect(cloud, "novalet")
    for ip in conn.network.ips():
        conn.network.delete_ip(ip)
    for router in conn.network.routers():
        for subnet_id in [s.id for s in conn.network.subnets(name="e2e-subnet")]:
            conn.network.remove_interface_from_router(router, subnet=subnet_id)
        conn.network.delete_router(router)
    for port in conn.network.ports(device_owner=""):
        conn.network.delete_port(port)


def connect(cloud: RunningCloud, name: str) -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud=name))


def from_outside(url: str) -> str | None:
    """The body the outside gets from `url`; None when it gets no answer."""
    def get() -> str | None:
        try:
            return httpx.get(url, timeout=3).text.strip()
        except httpx.HTTPError:
            return None
    return in_netns(OUTSIDE_NS, get)


def until(check: Any, expected: object, what: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    seen = check()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = check()
    assert seen == expected, f"{what}: got {seen!r}"


def made(cloud: RunningCloud, *args: str) -> dict[str, Any]:
    shown = cloud.openstack_json(*args)
    assert isinstance(shown, dict)
    return shown


def test_project_network_router_ports_and_floating_ips(cloud: RunningCloud,
                                                       tmp_path: Path) -> None:
    made(cloud, "network", "create", "e2e-net")
    subnet = made(cloud, "subnet", "create", "--network", "e2e-net", "--subnet-range",
                  SUBNET, "e2e-subnet")
    router = made(cloud, "router", "create", "e2e-router")
    cloud.openstack("router", "set", "--external-gateway", "public", "e2e-router")
    cloud.openstack("router", "add", "subnet", "e2e-router", "e2e-subnet")
    gateway = made(cloud, "router", "show", router["id"])["external_gateway_info"]
    gateway_address = gateway["external_fixed_ips"][0]["ip_address"]
    made(cloud, "security", "group", "create", "e2e-sg")
    rule = made(cloud, "security", "group", "rule", "create", "--protocol", "tcp",
                "--dst-port", "8000", "--remote-ip", "0.0.0.0/0", "e2e-sg")
    port = made(cloud, "port", "create", "--network", "e2e-net", "--security-group",
                "e2e-sg", "e2e-port")

    web = boot(cloud, "web", GUEST.format(name="web", outside=OUTSIDE), tmp_path,
               "--nic", f"port-id={port['id']}")
    other = boot(cloud, "other", GUEST.format(name="other", outside=OUTSIDE), tmp_path,
                 "--nic", "net-id=e2e-net", "--security-group", "e2e-sg")
    for server in (web, other):
        name = server["name"]
        text = wait_console(cloud, name, f"NOVALET-GUEST-READY uuid={server['id']}")
        address = fixed_ip(cloud, name)
        assert address.startswith(SUBNET.rsplit(".", 1)[0]), address
        assert f"eth0 has address {address}" in text, f"{name} got no DHCP lease"
        # through the router: the outside sees the router's gateway address
        wait_console(cloud, name, f"NOVALET-OUT {re.escape(gateway_address)}")
    assert fixed_ip(cloud, "web") == port["fixed_ips"][0]["ip_address"]
    assert subnet["gateway_ip"] == SUBNET.rsplit(".", 1)[0] + ".1"

    floating = made(cloud, "floating", "ip", "create", "public")
    address = floating["floating_ip_address"]
    cloud.openstack("server", "add", "floating", "ip", "web", address)
    until(lambda: from_outside(f"http://{address}:8000/ok"), "guest-web-ok",
          "the floating IP does not reach the guest")
    shown = made(cloud, "floating", "ip", "show", floating["id"])
    assert (shown["router_id"], shown["port_id"]) == (router["id"], port["id"])

    cloud.openstack("security", "group", "rule", "delete", rule["id"])
    until(lambda: from_outside(f"http://{address}:8000/ok"), None,
          "removing the rule left the port open")
    made(cloud, "security", "group", "rule", "create", "--protocol", "tcp",
         "--dst-port", "8000", "--remote-ip", "0.0.0.0/0", "e2e-sg")
    until(lambda: from_outside(f"http://{address}:8000/ok"), "guest-web-ok",
          "the rule made again does not let the outside in")

    cloud.openstack("floating", "ip", "delete", floating["id"])
    until(lambda: from_outside(f"http://{address}:8000/ok"), None,
          "a deleted floating IP still reaches the guest")
    # the router's interface gone, the guests reach nothing outside
    cloud.openstack("router", "remove", "subnet", "e2e-router", "e2e-subnet")
    seen = len(cloud.openstack("console", "log", "show", "other").stdout)
    wait_console(cloud, "other", "NOVALET-OUT blocked", after=seen)
    cloud.openstack("router", "add", "subnet", "e2e-router", "e2e-subnet")


def test_sdk_create_server_with_auto_ip(cloud: RunningCloud) -> None:
    conn = connect(cloud, "novalet-demo")
    server = conn.create_server(
        "auto", image="novalet-tiny", flavor="t.small", network="e2e-net",
        security_groups=["e2e-sg"], auto_ip=True, wait=True, timeout=300,
        userdata=GUEST.format(name="auto", outside=OUTSIDE))
    assert server.status == "ACTIVE"
    address = conn.get_server_public_ip(server)
    assert address and address.startswith("192.168.251."), server.addresses
    until(lambda: from_outside(f"http://{address}:8000/ok"), "guest-auto-ok",
          "the floating IP of auto_ip does not answer", timeout=120)
