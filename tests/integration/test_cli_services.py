"""The real `openstack compute service` commands against a running `novalet up`: list,
disable with a reason (the scheduler then refuses the host), enable, force down, delete;
by uuid from microversion 2.53 and by host and binary below it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RunningCloud

pytestmark = pytest.mark.integration


def _services(cloud: RunningCloud, *args: str, version: str | None = None
              ) -> list[dict[str, Any]]:
    pinned = ("--os-compute-api-version", version) if version else ()
    found = cloud.openstack_json(*pinned, "compute", "service", "list", *args, cloud="novalet")
    assert isinstance(found, list)
    return found


def _compute(cloud: RunningCloud, version: str | None = None) -> dict[str, Any]:
    (service,) = _services(cloud, "--long", "--service", "nova-compute", version=version)
    return service


def _set(cloud: RunningCloud, *args: str, version: str | None = None) -> None:
    pinned = ("--os-compute-api-version", version) if version else ()
    cloud.openstack(*pinned, "compute", "service", "set", *args, cloud="novalet")


def _puts(cloud: RunningCloud) -> list[str]:
    """The os-services paths PUT so far, from the server's request log."""
    return [line.split(" PUT ")[1].split(" status")[0] for line in
            cloud.log.read_text().splitlines() if " PUT /compute/v2.1/os-services/" in line]


def test_service_list_shows_every_service(running_cloud: RunningCloud) -> None:
    listed = _services(running_cloud)
    (compute,) = [s for s in listed if s["Binary"] == "nova-compute"]
    host = compute["Host"]
    assert (compute["Zone"], compute["Status"], compute["State"]) == ("nova", "enabled", "up")
    assert str(uuid.UUID(compute["ID"])) == compute["ID"]  # the client negotiates >= 2.53
    assert compute["Updated At"][10] == "T"
    others = [s for s in listed if s is not compute]
    assert {s["Binary"] for s in others} >= {"nova-conductor", "nova-scheduler"}
    assert all(s["Zone"] == "internal" and s["State"] == "up" for s in others)

    old = _services(running_cloud, "--long", "--host", host, version="2.1")
    assert all(isinstance(s["ID"], int) and "Forced Down" not in s for s in old)
    assert "Disabled Reason" in old[0]
    assert _compute(running_cloud, "2.11")["Forced Down"] is False

    denied = running_cloud.openstack("compute", "service", "list", check=False)
    assert denied.returncode != 0
    assert "os_compute_api:os-services:list" in denied.stderr


def test_disable_refuses_the_host_until_enabled(running_cloud: RunningCloud,
                                               tmp_path: Path) -> None:
    cloud = running_cloud
    host = _compute(cloud)["Host"]
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"\0" * 4096)
    cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                    "--public", "svc-image", cloud="novalet")

    for version in (None, "2.53"):  # negotiated, then pinned: PUT /os-services/{uuid}
        service_id = _compute(cloud, version)["ID"]
        _set(cloud, "--disable", "--disable-reason", "new disks", host, "nova-compute",
             version=version)
        assert _puts(cloud)[-1] == f"/compute/v2.1/os-services/{service_id}"
        shown = _compute(cloud, version)
        assert (shown["Status"], shown["Disabled Reason"]) == ("disabled", "new disks")
        _set(cloud, "--enable", host, "nova-compute", version=version)
        shown = _compute(cloud, version)
        assert (shown["Status"], shown["Disabled Reason"]) == ("enabled", None)

    _set(cloud, "--disable", "--disable-reason", "maintenance", host, "nova-compute")
    failed = cloud.openstack("server", "create", "--flavor", "m1.tiny", "--image",
                             "svc-image", "--wait", "refused", check=False)
    assert failed.returncode != 0
    fault = cloud.openstack_json("server", "show", "refused")["fault"]  # type: ignore[index]
    assert "No valid host was found" in fault["message"]
    assert f"{host} (compute service disabled (maintenance))" in fault["message"]
    cloud.openstack("server", "delete", "--wait", "refused")

    _set(cloud, "--enable", host, "nova-compute")
    server = cloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                  "svc-image", "--wait", "welcome")
    assert server["status"] == "ACTIVE"  # type: ignore[index]
    cloud.openstack("server", "delete", "--wait", "welcome")


def test_below_253_the_client_names_host_and_binary(running_cloud: RunningCloud) -> None:
    cloud = running_cloud
    host = _compute(cloud)["Host"]
    _set(cloud, "--disable", "--disable-reason", "fenced", "--down", host, "nova-compute",
         version="2.11")
    assert _puts(cloud)[-2:] == ["/compute/v2.1/os-services/disable-log-reason",
                                 "/compute/v2.1/os-services/force-down"]
    shown = _compute(cloud, "2.11")
    assert isinstance(shown["ID"], int)
    assert (shown["Status"], shown["Disabled Reason"], shown["State"],
            shown["Forced Down"]) == ("disabled", "fenced", "down", True)

    _set(cloud, "--enable", "--up", host, "nova-compute", version="2.11")
    assert _puts(cloud)[-2:] == ["/compute/v2.1/os-services/enable",
                                 "/compute/v2.1/os-services/force-down"]
    shown = _compute(cloud, "2.11")
    assert (shown["Status"], shown["Disabled Reason"], shown["State"],
            shown["Forced Down"]) == ("enabled", None, "up", False)

    # Forcing down needs 2.11: the client refuses before asking.
    result = cloud.openstack("--os-compute-api-version", "2.1", "compute", "service", "set",
                             "--down", host, "nova-compute", cloud="novalet", check=False)
    assert result.returncode != 0 and "2.11 or later is required" in result.stderr


def test_service_delete(running_cloud: RunningCloud) -> None:
    cloud = running_cloud
    (scheduler,) = _services(cloud, "--service", "nova-scheduler")
    cloud.openstack("compute", "service", "delete", scheduler["ID"], cloud="novalet")
    assert scheduler["ID"] not in [s["ID"] for s in _services(cloud)]
    (conductor,) = _services(cloud, "--service", "nova-conductor", version="2.1")
    cloud.openstack("--os-compute-api-version", "2.1", "compute", "service", "delete",
                    str(conductor["ID"]), cloud="novalet")
    assert conductor["ID"] not in [s["ID"] for s in _services(cloud, version="2.1")]
    result = cloud.openstack("compute", "service", "delete", "not-a-uuid", cloud="novalet",
                             check=False)
    assert result.returncode != 0 and "Invalid uuid not-a-uuid" in result.stderr
