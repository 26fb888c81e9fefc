"""GET /servers/{id}/diagnostics: admin only by default; the legacy flat form below
2.48 and the standard one from 2.48 (the fake driver's figures); 409 unless the
guest runs or while it has no host."""

from __future__ import annotations

from tests.functional.conftest import Api, boot, wait_for
from tests.functional.test_driver_capabilities import api501

__all__ = ["api501"]  # the fixture: an Api on which 501 is an answer, not a bug

S = "/compute/v2.1/servers"
_NIC_KEYS = {"mac_address", "rx_octets", "rx_errors", "rx_drop", "rx_packets", "rx_rate",
             "tx_octets", "tx_errors", "tx_drop", "tx_packets", "tx_rate"}


async def test_standard_form_from_2_48(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("GET", f"{S}/{server['id']}/diagnostics", user="admin",
                             version="2.48")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"state", "driver", "hypervisor", "hypervisor_os", "uptime",
                         "config_drive", "num_cpus", "num_nics", "num_disks",
                         "memory_details", "cpu_details", "nic_details", "disk_details"}
    assert (body["state"], body["driver"]) == ("running", "libvirt")
    flavor = (await api.request("GET", "/compute/v2.1/flavors/1")).json()["flavor"]
    assert body["num_cpus"] == len(body["cpu_details"]) == flavor["vcpus"]
    assert body["memory_details"]["maximum"] == flavor["ram"]
    assert body["num_disks"] == len(body["disk_details"]) >= 1
    assert set(body["disk_details"][0]) == {"read_bytes", "read_requests", "write_bytes",
                                            "write_requests", "errors_count"}
    assert set(body["cpu_details"][0]) == {"id", "time", "utilisation"}
    assert all(set(n) == _NIC_KEYS for n in body["nic_details"])


async def test_legacy_form_below_2_48(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("GET", f"{S}/{server['id']}/diagnostics", user="admin",
                             version="2.47")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["cpu0_time"] == 17300000000 and body["root_read"] == 262144
    assert body["memory"] % 1024 == 0 and "state" not in body


async def test_members_are_refused_and_unknown_is_404(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("GET", f"{S}/{server['id']}/diagnostics")
    assert resp.status_code == 403, resp.text
    assert "os-server-diagnostics" in resp.text
    resp = await api.request("GET", f"{S}/no-such-server/diagnostics", user="admin")
    assert resp.status_code == 404


async def test_a_stopped_server_has_no_diagnostics(api: Api) -> None:
    server = await boot(api)
    resp = await api.request("POST", f"{S}/{server['id']}/action", json={"os-stop": None})
    assert resp.status_code == 202, resp.text
    await wait_for(api, server["id"], "SHUTOFF")
    resp = await api.request("GET", f"{S}/{server['id']}/diagnostics", user="admin",
                             version="2.48")
    assert resp.status_code == 409, resp.text
    assert "power state shutdown" in resp.json()["conflictingRequest"]["message"]


async def test_a_server_without_a_host_is_409(api: Api) -> None:
    resp = await api.request("POST", "/compute/v2.1/flavors", user="admin", json={
        "flavor": {"name": "huge", "ram": 512, "vcpus": 1, "disk": 10 ** 7}})
    assert resp.status_code == 200, resp.text
    server = await boot(api, wait="ERROR", flavorRef=resp.json()["flavor"]["id"])
    resp = await api.request("GET", f"{S}/{server['id']}/diagnostics", user="admin")
    assert resp.status_code == 409, resp.text
    assert "not ready" in resp.text


async def test_a_host_capped_below_1_4_is_asked_nothing(api501: Api) -> None:
    """A host of the previous release has no get_diagnostics: 501 up front."""
    server = await boot(api501)
    caps = api501.cloud.services.compute.compute.caps.caps
    caps["compute"] = "1.3"
    try:
        resp = await api501.request("GET", f"{S}/{server['id']}/diagnostics", user="admin",
                                    version="2.48")
    finally:
        del caps["compute"]
    assert resp.status_code == 501, resp.text
    assert "release without them" in resp.text
