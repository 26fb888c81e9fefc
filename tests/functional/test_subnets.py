"""Subnets in the whole cloud (fake driver, in-process bus): a network gets its subnet
through the domain service (the network API's HTTP face calls the same), the compute
API's os-networks sees the mirrored L3 columns, and a server boots on it with an
address of the allocation pool; a boot before the subnet exists is a 400."""

from __future__ import annotations

import ipaddress
import uuid

from novalet.common.context import RequestContext
from novalet.db.models import Network
from novalet.network.subnets import SubnetChanges, SubnetService, SubnetSpec
from tests.functional.conftest import Api, boot, delete_server, ensure_image

V = "/compute/v2.1"


async def _demo_project(api: Api) -> str:
    (project,) = await api.cloud.services.identity.list_projects(name="demo")
    return str(project.id)


async def test_a_network_is_served_once_its_subnet_exists(api: Api) -> None:
    services = api.cloud.services
    project_id = await _demo_project(api)
    network = Network(uuid=str(uuid.uuid4()), label="web", bridge="nvbr77",
                      project_id=project_id, multi_host=False)
    async with services.db.transaction() as s:  # as the network API's POST /networks does
        s.add(network)
    image_id = await ensure_image(api)
    body = {"server": {"name": "early", "imageRef": image_id, "flavorRef": "1",
                       "networks": [{"uuid": network.uuid}]}}
    resp = await api.request("POST", f"{V}/servers", version="2.100", json=body)
    assert resp.status_code == 400 and "requires a subnet" in resp.text, resp.text

    subnets = SubnetService(services.db, api.cloud.conf, services.network.refresh_hosts)
    demo = RequestContext(user_id="demo", project_id=project_id, roles=["member"])
    info = await subnets.create_subnet(demo, SubnetSpec(
        network_id=network.uuid, cidr="10.20.0.0/26", dns_nameservers=["192.0.2.53"],
        allocation_pools=[{"start": "10.20.0.40", "end": "10.20.0.49"}]))
    resp = await api.request("GET", f"{V}/os-networks/{network.uuid}", user="admin",
                             version="2.1")
    assert resp.status_code == 200, resp.text
    shown = resp.json()["network"]
    assert (shown["cidr"], shown["gateway"], shown["dhcp_start"], shown["dns1"]) == (
        "10.20.0.0/26", "10.20.0.1", "10.20.0.40", "192.0.2.53")

    server = await boot(api, "on-subnet", networks=[{"uuid": network.uuid}])
    (address,) = server["addresses"]["web"]
    assert ipaddress.ip_address("10.20.0.40") <= ipaddress.ip_address(address["addr"]) \
        <= ipaddress.ip_address("10.20.0.49")
    renamed = await subnets.update_subnet(demo, info.id, SubnetChanges(name="front"))
    assert renamed.name == "front"
    await delete_server(api, server["id"])
    await subnets.delete_subnet(demo, info.id)
    resp = await api.request("GET", f"{V}/os-networks/{network.uuid}", user="admin",
                             version="2.1")
    assert resp.json()["network"]["cidr"] is None
