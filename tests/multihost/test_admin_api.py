"""The admin API over RabbitMQ and PostgreSQL with two compute processes: each host
reports its hypervisor, answers its own uptime over the bus, and a killed one is
down (its uptime a 400); a resize is recorded as a migration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from novalet.virt.fake import FAKE_UPTIME
from tests.multihost.conftest import Cloud, deployment, wait_for

pytestmark = pytest.mark.integration
COMPUTES = ["compute-1", "compute-2"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str]
          ) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("admin-api")
    for dep, database in deployment(root, backing, COMPUTES):
        yield Cloud(dep, database)


def _hypervisors(cloud: Cloud) -> dict[str, dict[str, object]]:
    found = cloud.api("GET", "/os-hypervisors/detail", version="2.88").json()
    return {h["hypervisor_hostname"]: h for h in found["hypervisors"]}


def test_each_host_answers_its_uptime_and_a_killed_one_is_down(cloud: Cloud) -> None:
    hypervisors = _hypervisors(cloud)
    assert set(hypervisors) == set(COMPUTES)
    for name, hv in hypervisors.items():
        assert hv["state"] == "up" and hv["hypervisor_type"] == "fake", name
        resp = cloud.api("GET", f"/os-hypervisors/{hv['id']}/uptime", version="2.53")
        assert resp.status_code == 200 and resp.json()["hypervisor"]["uptime"] == FAKE_UPTIME
    cloud.d.kill("compute", "compute-2")
    wait_for(lambda: _hypervisors(cloud)["compute-2"]["state"] == "down", 90,
             "compute-2 never shown down")
    down = _hypervisors(cloud)["compute-2"]
    resp = cloud.api("GET", f"/os-hypervisors/{down['id']}/uptime", version="2.53")
    assert resp.status_code == 400
    shown = cloud.api("GET", f"/os-hypervisors/{down['id']}", version="2.88").json()
    assert shown["hypervisor"]["uptime"] is None
    cloud.d.start("compute", "compute-2")
    wait_for(lambda: _hypervisors(cloud)["compute-2"]["state"] == "up", 60,
             "compute-2 never up again")


def test_a_resize_is_recorded(cloud: Cloud) -> None:
    (sid,) = cloud.boot("resized")
    assert cloud.wait_settled([sid])[sid]["status"] == "ACTIVE"
    resp = cloud.api("POST", f"/servers/{sid}/action", json={"resize": {"flavorRef": "2"}})
    assert resp.status_code == 202, resp.text

    def status() -> str | None:
        found = cloud.api("GET", f"/os-migrations?instance_uuid={sid}", version="2.80")
        migrations = found.json()["migrations"]
        return migrations[0]["status"] if migrations else None

    wait_for(lambda: status() == "finished", 60, "resize never finished")
    resp = cloud.api("POST", f"/servers/{sid}/action", json={"confirmResize": None})
    assert resp.status_code == 204, resp.text
    wait_for(lambda: status() == "confirmed", 60, "resize never confirmed")
    cloud.delete_all()
