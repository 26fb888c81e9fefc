"""The real `openstack` CLI drives os-hosts (host list, show and set) against
`novalet up` (fake driver): admin only, and status really disables the host's compute
service; maintenance mode answers 501 as Nova's drivers without it do."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import RunningCloud

import pytest

pytestmark = pytest.mark.integration


def _compute_host(cloud: RunningCloud) -> str:
    hosts = cloud.openstack_json("host", "list", cloud="novalet")
    assert isinstance(hosts, list)
    computes = [h for h in hosts if h["Service"] == "compute"]
    assert computes, hosts
    return str(computes[0]["Host Name"])


def _compute_status(cloud: RunningCloud, host: str) -> str:
    services = cloud.openstack_json("compute", "service", "list", "--host", host,
                                    "--service", "nova-compute", cloud="novalet")
    assert isinstance(services, list) and len(services) == 1, services
    return str(services[0]["Status"])


def test_host_list_show_and_set(running_cloud: RunningCloud) -> None:
    host = _compute_host(running_cloud)
    shown: Any = running_cloud.openstack_json("host", "show", host, cloud="novalet")
    projects = {row["Project"] for row in shown}
    assert {"(total)", "(used_now)", "(used_max)"} <= projects, shown
    total = next(row for row in shown if row["Project"] == "(total)")
    assert total["CPU"] > 0 and total["Memory MB"] > 0

    running_cloud.openstack("host", "set", "--disable", host, cloud="novalet")
    assert _compute_status(running_cloud, host) == "disabled"
    running_cloud.openstack("host", "set", "--enable", host, cloud="novalet")
    assert _compute_status(running_cloud, host) == "enabled"

    maintenance = running_cloud.openstack("host", "set", "--enable-maintenance", host,
                                          cloud="novalet", check=False)
    assert maintenance.returncode != 0
    assert "501" in maintenance.stderr or "not implemented" in maintenance.stderr.lower(), \
        maintenance.stderr


def test_host_list_is_admin_only(running_cloud: RunningCloud) -> None:
    denied = running_cloud.openstack("host", "list", check=False)  # demo, a member
    assert denied.returncode != 0 and "403" in denied.stderr, denied.stderr
