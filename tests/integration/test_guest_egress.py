"""Egress rules with a real guest (issue 17, slice 3): with its group's egress rules
gone the guest's outbound TCP to the host is dropped (the metadata service still
answers it), out of every group it sends freely (as before egress rules), and an
egress rule for that port lets it out again.

The network API has no HTTP routes yet, so the test calls its domain service
(network/neutron_security_groups.py) on the cloud's database, and then has the
hosts refresh through the compute API's proxy (a rule added and removed), as a
change through the network API will once it is wired to the running cloud."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from novalet import config
from novalet.common.context import RequestContext
from novalet.db.engine import Database
from novalet.network.api import NetworkAPI
from novalet.network.neutron_security_groups import NeutronSecurityGroups
from tests.integration.conftest import RunningCloud, free_port, qemu_cloud
from tests.integration.test_guest_networking import Api, boot, wait_console

pytestmark = pytest.mark.integration

CONF = """[DEFAULT]
compute_driver = qemu
force_config_drive = false
[network]
fixed_range = 10.232.0.0/24
flat_network_bridge = nvbregress
"""
GATEWAY = "10.232.0.1"
PROBE = """#!/bin/sh
(while true; do
  if timeout 3 wget -q -O - http://{gateway}:{port}/ok >/dev/null 2>&1
  then out=ok; else out=blocked; fi
  if timeout 3 wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json \
     >/dev/null 2>&1
  then meta=ok; else meta=blocked; fi
  echo "NOVALET-EGRESS $out metadata=$meta" >/dev/ttyS0
  sleep 1; done) &
"""
T = TypeVar("T")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path
          ) -> Iterator[RunningCloud]:
    with qemu_cloud(tmp_path_factory.mktemp("egress-cloud"), guest_image, CONF,
                    ["nvbregress"]) as running:
        yield running


@pytest.fixture
def host_server() -> Iterator[int]:
    """An HTTP server on the host (every address) answering /ok; its port."""
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host-ok\n")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", free_port()), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def on_cloud_db(cloud: RunningCloud,
                work: Callable[[NeutronSecurityGroups], Awaitable[T]]) -> T:
    """Run `work` with the network API's service over the running cloud's database."""
    async def run() -> T:
        conf = config.Config()
        conf.set("DEFAULT", "state_path", str(cloud.state_dir))
        db = Database(conf.database_url)
        try:
            return await work(NeutronSecurityGroups(NetworkAPI(db, conf)))
        finally:
            await db.close()
    return asyncio.run(run())


def refresh(api: Api, group_id: str) -> None:
    """Have the cloud's hosts apply their firewall now (a proxy change does)."""
    rule = api.call("POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": group_id, "ip_protocol": "udp", "from_port": 9, "to_port": 9,
        "cidr": "192.0.2.9/32"}})
    api.call("DELETE", f"/os-security-group-rules/{rule['security_group_rule']['id']}")


def test_egress_rules_decide_what_a_guest_sends(cloud: RunningCloud, tmp_path: Path,
                                                host_server: int) -> None:
    api = Api(cloud)
    made = api.call("POST", "/os-security-groups", json={
        "security_group": {"name": "egress", "description": "egress test"}})["security_group"]
    project = made["tenant_id"]
    ctx = RequestContext(user_id="demo", project_id=project, roles=["member"])
    boot(cloud, "sender", PROBE.format(gateway=GATEWAY, port=host_server), tmp_path,
         "--security-group", "egress")
    # a new group has Neutron's egress-anywhere rules
    wait_console(cloud, "sender", "NOVALET-EGRESS ok metadata=ok", timeout=180)

    async def drop_egress(groups: NeutronSecurityGroups) -> str:
        (group,) = [g for g in await groups.list_groups(ctx) if g.name == "egress"]
        for rule in group.security_group_rules:
            if rule.direction == "egress":
                await groups.delete_rule(ctx, rule.id)
        return group.id

    group_uuid = on_cloud_db(cloud, drop_egress)
    refresh(api, made["id"])
    seen = len(cloud.openstack("console", "log", "show", "sender").stdout)
    # no egress rule: the host's port is cut off; the metadata service is not
    wait_console(cloud, "sender", "NOVALET-EGRESS blocked metadata=ok", after=seen)
    # in no group at all it sends freely again, as before egress rules (review finding 7)
    seen = len(cloud.openstack("console", "log", "show", "sender").stdout)
    cloud.openstack("server", "remove", "security", "group", "sender", "egress")
    wait_console(cloud, "sender", "NOVALET-EGRESS ok metadata=ok", after=seen)
    seen = len(cloud.openstack("console", "log", "show", "sender").stdout)
    cloud.openstack("server", "add", "security", "group", "sender", "egress")
    wait_console(cloud, "sender", "NOVALET-EGRESS blocked metadata=ok", after=seen)

    async def allow_port(groups: NeutronSecurityGroups) -> None:
        await groups.create_rule(ctx, group_uuid, "egress", protocol="tcp",
                                 port_range_min=host_server, port_range_max=host_server,
                                 remote_ip_prefix=f"{GATEWAY}/32")

    on_cloud_db(cloud, allow_port)
    refresh(api, made["id"])
    seen = len(cloud.openstack("console", "log", "show", "sender").stdout)
    wait_console(cloud, "sender", "NOVALET-EGRESS ok metadata=ok", after=seen)
