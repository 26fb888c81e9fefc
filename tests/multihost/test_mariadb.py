"""The multi-process cloud on MariaDB instead of PostgreSQL."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest

from tests.multihost.conftest import Cloud, deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, backing: dict[str, str]
          ) -> Iterator[Cloud]:
    for dep, database in deployment(tmp_path_factory.mktemp("multihost-mariadb"), backing,
                                    ["compute-a", "compute-b"],
                                    server_key="NOVALET_TEST_MYSQL_URL"):
        yield Cloud(dep, database)


def test_servers_boot_across_hosts_and_leave_nothing(cloud: Cloud) -> None:
    ids = cloud.boot("maria", count=12)
    servers = cloud.wait_settled(ids)
    assert {s["status"] for s in servers.values()} == {"ACTIVE"}
    hosts = collections.Counter(s["OS-EXT-SRV-ATTR:host"] for s in servers.values())
    assert set(hosts) == {"compute-a", "compute-b"}, hosts
    services = cloud.services()
    assert {binary for _host, binary in services} >= {"nova-conductor", "nova-scheduler",
                                                      "nova-compute"}
    assert all(s["state"] == "up" for s in services.values())
    cloud.delete_all()
    assert cloud.sql("SELECT COUNT(*) FROM allocations") == [(0,)]
