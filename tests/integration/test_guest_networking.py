"""Real guests on real networks: DHCP from dnsmasq, the metadata service through the
169.254.169.254 DNAT, security groups and floating IPs in nftables."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import (RunningCloud, host_leftovers, keystone_token,
                                        qemu_cloud, start_cloud, stop_cloud)

pytestmark = pytest.mark.integration

CONF = """[DEFAULT]
compute_driver = qemu
force_config_drive = false
[network]
fixed_range = 10.231.0.0/24
floating_ip_pools = public=172.31.231.0/28
flat_network_bridge = nvbrtest
"""
HTTPD = """#!/bin/sh
mkdir -p /www && echo guest-{name}-ok > /www/ok
busybox httpd -p 8000 -h /www
{extra}
"""
PROBE = """(while true; do
  if timeout 3 wget -q -O - http://{target}:8000/ok >/dev/null 2>&1; then
    echo NOVALET-PROBE ok >/dev/ttyS0; else echo NOVALET-PROBE blocked >/dev/ttyS0; fi
  sleep 1; done) &"""


class Api:
    """The compute API as the demo user, at a version that still has the proxies."""

    def __init__(self, cloud: RunningCloud) -> None:
        base = f"http://127.0.0.1:{cloud.port}"
        self.client = httpx.Client(base_url=base, timeout=60)
        self.headers = {"X-Auth-Token": keystone_token(self.client),
                        "OpenStack-API-Version": "compute 2.35"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.client.request(method, f"/compute/v2.1{path}", headers=self.headers,
                                   **kwargs)
        assert resp.status_code < 400, resp.text
        return resp.json() if resp.content else None


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("net-cloud"), guest_image, CONF,
                    ["nvbrtest"]) as running:
        yield running


def boot(cloud: RunningCloud, name: str, user_data: str, tmp_path: Path,
         *extra: str, account: str = "novalet-demo") -> dict[str, Any]:
    script = tmp_path / f"{name}.sh"
    script.write_text(user_data)
    server = cloud.openstack_json("server", "create", "--flavor", "t.small", "--image",
                                  "novalet-tiny", "--user-data", str(script), *extra,
                                  "--wait", name, cloud=account)
    return server  # type: ignore[return-value]


def wait_console(cloud: RunningCloud, name: str, pattern: str, timeout: float = 120,
                 after: int = 0, account: str = "novalet-demo") -> str:
    """The console once `pattern` appears in it past its first `after` characters."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = cloud.openstack("console", "log", "show", name, cloud=account).stdout
        if re.search(pattern, text[after:]):
            return text
        time.sleep(1)
    raise AssertionError(f"{pattern!r} never appeared on {name}:\n{text[-3000:]}\n"
                         f"--- server log ---\n{cloud.tail(80)}")


def fixed_ip(cloud: RunningCloud, name: str, account: str = "novalet-demo") -> str:
    shown = cloud.openstack_json("server", "show", name, cloud=account)
    addresses = shown["addresses"]  # type: ignore[index]
    return str(next(iter(addresses.values()))[0])


def reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def test_dhcp_metadata_groups_and_floating_ips(cloud: RunningCloud, tmp_path: Path) -> None:
    api = Api(cloud)
    first = boot(cloud, "web1", HTTPD.format(name="web1", extra=""), tmp_path)
    text = wait_console(cloud, "web1", f"NOVALET-GUEST-READY uuid={first['id']}"
                                       " hostname=web1")
    ip1 = fixed_ip(cloud, "web1")
    # hostname=web1 came from the metadata service: no config drive is attached.
    assert f"eth0 has address {ip1}" in text, "the guest's DHCP address is not its fixed IP"

    # Same (default) group: a second guest reaches the first; the host does not.
    boot(cloud, "probe", HTTPD.format(name="probe", extra=PROBE.format(target=ip1)), tmp_path)
    wait_console(cloud, "probe", "NOVALET-PROBE ok")
    assert not reachable(f"http://{ip1}:8000/ok"), "the default group let the host in"

    # A group of its own cuts the probe off until a rule lets it in again.
    group = api.call("POST", "/os-security-groups", json={
        "security_group": {"name": "alone", "description": "no members but web1"}})
    gid = group["security_group"]["id"]
    api.call("POST", f"/servers/{first['id']}/action",
             json={"addSecurityGroup": {"name": "alone"}})
    api.call("POST", f"/servers/{first['id']}/action",
             json={"removeSecurityGroup": {"name": "default"}})
    seen = len(cloud.openstack("console", "log", "show", "probe").stdout)
    wait_console(cloud, "probe", "NOVALET-PROBE blocked", after=seen)
    rule = api.call("POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 8000, "to_port": 8000,
        "cidr": "0.0.0.0/0"}})
    deadline = time.monotonic() + 30
    while not reachable(f"http://{ip1}:8000/ok") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert reachable(f"http://{ip1}:8000/ok"), "the rule did not let the host in"
    api.call("DELETE", f"/os-security-group-rules/{rule['security_group_rule']['id']}")
    deadline = time.monotonic() + 30
    while reachable(f"http://{ip1}:8000/ok") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not reachable(f"http://{ip1}:8000/ok"), "removing the rule left the port open"

    # A floating IP reaches the guest (given a rule) and stops when disassociated.
    api.call("POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 8000, "to_port": 8000,
        "cidr": "0.0.0.0/0"}})
    floating = api.call("POST", "/os-floating-ips", json={"pool": "public"})["floating_ip"]
    address = floating["ip"]
    api.call("POST", f"/servers/{first['id']}/action",
             json={"addFloatingIp": {"address": address}})
    deadline = time.monotonic() + 30
    while not reachable(f"http://{address}:8000/ok") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert httpx.get(f"http://{address}:8000/ok", timeout=5).text.strip() == "guest-web1-ok"
    api.call("POST", f"/servers/{first['id']}/action",
             json={"removeFloatingIp": {"address": address}})
    deadline = time.monotonic() + 30
    while reachable(f"http://{address}:8000/ok") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not reachable(f"http://{address}:8000/ok")
    api.call("DELETE", f"/os-floating-ips/{floating['id']}")


SPOOF = """#!/bin/sh
(sleep 1
 if timeout 10 wget -q -O /tmp/own http://169.254.169.254/openstack/latest/meta_data.json
 then echo "NOVALET-CONTROL ok $(grep -o '"uuid": *"[^"]*"' /tmp/own)"
 else echo NOVALET-CONTROL failed; fi
 ip addr flush dev eth0
 ip addr add {victim}/24 dev eth0
 ip route add default via {gateway}
 if timeout 10 wget -q -O /tmp/stolen http://169.254.169.254/openstack/latest/meta_data.json
 then echo "NOVALET-SPOOF got $(grep -o '"uuid": *"[^"]*"' /tmp/stolen)"
 else echo NOVALET-SPOOF blocked; fi) >/dev/ttyS0 2>&1 &
"""


def test_a_guest_cannot_spoof_another_to_read_its_metadata(cloud: RunningCloud,
                                                            tmp_path: Path) -> None:
    victim = boot(cloud, "victim", "#!/bin/sh\ntrue\n", tmp_path)
    wait_console(cloud, "victim", "NOVALET-GUEST-READY")
    victim_ip = fixed_ip(cloud, "victim")
    gateway = victim_ip.rsplit(".", 1)[0] + ".1"
    thief = boot(cloud, "thief", SPOOF.format(victim=victim_ip, gateway=gateway), tmp_path)
    text = wait_console(cloud, "thief", "NOVALET-SPOOF (blocked|got)")
    assert f"NOVALET-CONTROL ok \"uuid\": \"{thief['id']}\"" in text, text[-2000:]
    assert "NOVALET-SPOOF blocked" in text, text[-2000:]
    after = text.split("NOVALET-CONTROL")[-1]
    assert victim["id"] not in after
    assert "not found" not in after and "applet" not in after, after  # the spoof really ran


def test_config_drive_gives_identity_without_any_network(cloud: RunningCloud,
                                                         tmp_path: Path) -> None:
    server = boot(cloud, "islander", "#!/bin/sh\ntrue\n", tmp_path, "--nic", "none",
                  "--config-drive", "True")
    wait_console(cloud, "islander",
                 f"NOVALET-GUEST-READY uuid={server['id']} hostname=islander")
    assert cloud.openstack_json("server", "show", "islander")["addresses"] == {}  # type: ignore[index]


def test_host_reboot_rebuilds_networking_from_the_database(cloud: RunningCloud,
                                                           tmp_path: Path) -> None:
    """Guests die and the kernel forgets bridges, taps, rules and dnsmasq, as in a
    host reboot; the restarted cloud rebuilds them and a started guest is back on
    its network with its address."""
    server = boot(cloud, "phoenix", "#!/bin/sh\ntrue\n", tmp_path)
    wait_console(cloud, "phoenix", "NOVALET-GUEST-READY")
    address = fixed_ip(cloud, "phoenix")
    stop_cloud(cloud)
    subprocess.run(["pkill", "-9", "-f", f"qemu-system.*{server['id']}"], check=False)
    subprocess.run(["pkill", "-f", "dnsmasq.*--interface=nvbrtest"], check=False)
    subprocess.run(["nft", "delete", "table", "ip", "novalet_nat"], check=False)
    subprocess.run(["nft", "delete", "table", "inet", "novalet_filter"], check=False)
    subprocess.run(["nft", "delete", "table", "bridge", "novalet_bridge"], check=False)
    for link in os.listdir("/sys/class/net"):  # only links novalet made (by their alias)
        alias = Path(f"/sys/class/net/{link}/ifalias")
        if link == "nvbrtest" or (alias.exists() and alias.read_text().startswith("novalet:")):
            subprocess.run(["ip", "link", "delete", link], check=False)
    assert host_leftovers("nvbrtest") == []
    restarted = start_cloud(cloud.state_dir, "--config-file",
                            str(cloud.state_dir.parent / "novalet.conf"))
    cloud.process, cloud.port, cloud.log = restarted.process, restarted.port, restarted.log
    deadline = time.monotonic() + 30
    while len(host_leftovers("nvbrtest")) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    rebuilt = host_leftovers("nvbrtest")
    assert "bridge nvbrtest" in rebuilt and any("dnsmasq" in r for r in rebuilt), rebuilt
    deadline = time.monotonic() + 60
    while cloud.openstack_json("server", "show", "phoenix")["status"] != "SHUTOFF":  # type: ignore[index]
        assert time.monotonic() < deadline, "the dead guest never showed as SHUTOFF"
        time.sleep(1)
    seen = len(cloud.openstack("console", "log", "show", "phoenix").stdout)
    cloud.openstack("server", "start", "phoenix")
    # The agent prints the address before the marker: wait for the marker.
    text = wait_console(cloud, "phoenix", "NOVALET-GUEST-READY", after=seen)
    assert f"eth0 has address {address}" in text[seen:]


NICS = """#!/bin/sh
(while true; do echo "NOVALET-NICS $(ls /sys/class/net | tr '\\n' ' ')" >/dev/ttyS0
  sleep 1; done) &
"""


def test_an_interface_is_hot_plugged_and_unplugged(cloud: RunningCloud, tmp_path: Path) -> None:
    api = Api(cloud)
    server = boot(cloud, "nics", NICS, tmp_path)
    wait_console(cloud, "nics", "NOVALET-NICS eth0 lo")
    (first,) = api.call("GET", f"/servers/{server['id']}/os-interface")["interfaceAttachments"]
    seen = len(cloud.openstack("console", "log", "show", "nics").stdout)
    added = api.call("POST", f"/servers/{server['id']}/os-interface", json={
        "interfaceAttachment": {"net_id": first["net_id"]}})["interfaceAttachment"]
    wait_console(cloud, "nics", "NOVALET-NICS eth0 eth1 lo", after=seen)
    tap = f"tap{added['port_id'][:11]}"
    assert Path(f"/sys/class/net/{tap}/brport").exists(), "the new NIC's tap is not bridged"
    seen = len(cloud.openstack("console", "log", "show", "nics").stdout)
    api.call("DELETE", f"/servers/{server['id']}/os-interface/{added['port_id']}")
    wait_console(cloud, "nics", "NOVALET-NICS eth0 lo", after=seen)
    assert not Path(f"/sys/class/net/{tap}").exists(), "the detached NIC's tap is left"
    addresses = cloud.openstack_json("server", "show", "nics")["addresses"]  # type: ignore[index]
    assert [a for net in addresses.values() for a in net] == [
        first["fixed_ips"][0]["ip_address"]]
