"""bench/migrate.py's API side: live migrations through the compute API between two
QEMU compute hosts, each its own `novalet compute` process with its own state
directory (no shared storage: block migrations), over RabbitMQ and PostgreSQL
(scripts/backing-services.sh) with the controller services as processes too."""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from migration_figures import Sample, parse_done
from realcloud import ROOT, Cloud, kill_guests, place_test_image

from novalet.service.local_deployment import LocalDeployment

HOSTS = ("bench-a", "bench-b")
PORT_RANGES = {"bench-a": "49152:49183", "bench-b": "49184:49215"}
POLL = 0.02
MIGRATION_TIMEOUT = 900.0
WHERE = "API, conductor, scheduler and two QEMU computes as processes over RabbitMQ + PostgreSQL"


def unavailable_reason() -> str | None:
    """Why the API side can't run on this tree, or None when it can."""
    from novalet.virt.qemu.driver import QemuDriver
    if not QemuDriver.capabilities.supports_live_migrate:
        return ("API side not run: the QEMU driver has no live migration on this tree "
                "(QemuDriver.capabilities.supports_live_migrate is False)")
    return None


@contextmanager
def two_qemu_hosts(root: Path, image: Path) -> Iterator[LocalDeployment]:
    """A started multi-process cloud with QEMU hosts bench-a and bench-b, migrating
    over loopback as the hand-made reference does; every guest killed at the end."""
    sys.path.insert(0, str(ROOT))  # the multihost tests' helpers for the backing servers
    from tests.multihost.conftest import backing_urls, provisioned
    with provisioned(backing_urls()) as (transport, database):
        place_test_image(image, root / "controller")
        hosts: dict[str, dict[str, dict[str, Any]]] = {host: {
            "DEFAULT": {"compute_driver": "qemu"},
            "qemu": {"live_migration_inbound_addr": "127.0.0.1",
                     "live_migration_port_range": PORT_RANGES[host]}} for host in HOSTS}
        dep = LocalDeployment(root, transport, database, list(HOSTS), host_options=hosts,
                              options={"quota": {"instances": -1, "cores": -1, "ram": -1}})
        try:
            dep.start_all()
            yield dep
        finally:
            dep.stop_all()
            for host in HOSTS:
                kill_guests(root / host)


class ApiMigrations:
    """Servers booted on bench-a and moved between the hosts through the API."""

    def __init__(self, dep: LocalDeployment) -> None:
        self.dep = dep
        self.cloud = Cloud(dep.url, dep.root / "controller")
        self.image = ""

    async def setup(self, sizes: list[int]) -> None:
        await self.cloud.login()
        self.image = await self.cloud.setup()
        for size in sizes:
            await self.cloud.client.post("/compute/v2.1/flavors", headers=self.cloud.headers,
                                         json={"flavor": {"name": f"bench-{size}", "ram": size,
                                                          "vcpus": 1, "disk": 1,
                                                          "id": f"bench-{size}"}})
        # The destination's image cache warmed, as the hand-made hosts' are.
        for host in HOSTS:
            await self.boot(sizes[0], "#!/bin/sh\n", host)
            await self.cloud.delete_all()

    async def boot(self, memory_mb: int, user_data: str, host: str = HOSTS[0]) -> str:
        """A server on `host` with the user data, once its guest said it is ready."""
        uuid = await self.cloud.boot(
            self.image, f"api-{memory_mb}", config_drive=True, flavorRef=f"bench-{memory_mb}",
            availability_zone=f"nova:{host}",
            user_data=base64.b64encode(user_data.encode()).decode())
        await self.cloud.wait_marker(uuid)
        return uuid

    async def host_of(self, uuid: str) -> str:
        server = await self._server(uuid)
        return str(server["OS-EXT-SRV-ATTR:host"])

    async def migrate(self, uuid: str) -> Sample:
        """Live-migrate `uuid` to the other host: from the POST to the migration
        `completed` and the server ACTIVE there; the downtime from the source's log."""
        source = await self.host_of(uuid)
        dest = HOSTS[1] if source == HOSTS[0] else HOSTS[0]
        log = self.dep.processes[f"compute@{source}"].log
        offset = log.stat().st_size
        started = time.monotonic()
        resp = await self.cloud.client.post(
            f"/compute/v2.1/servers/{uuid}/action", headers=self.cloud.headers,
            json={"os-migrateLive": {"host": dest, "block_migration": "auto"}})
        if resp.status_code != 202:
            raise RuntimeError(f"os-migrateLive answered {resp.status_code}: {resp.text}")
        await self._wait_moved(uuid, dest, started)
        total = time.monotonic() - started
        with open(log, "rb") as text:
            text.seek(offset)
            done = parse_done(text.read().decode(errors="replace"), uuid)
        return Sample(total_s=total, downtime_ms=done[1] if done else None,
                      driver_s=done[0] if done else None)

    async def _wait_moved(self, uuid: str, dest: str, started: float) -> None:
        """Until the migration is `completed` and the server ACTIVE on `dest` without a
        task (the conductor writes the server before `completed`): both read at each
        look, side by side, so that the end is seen one look after it came."""
        while time.monotonic() - started < MIGRATION_TIMEOUT:
            migration, server = await asyncio.gather(self._newest_migration(uuid),
                                                     self._server(uuid))
            status = migration.get("status") if migration else None
            if status in ("error", "failed", "cancelled"):
                raise RuntimeError(f"live migration of {uuid} ended {status}")
            if status == "completed" and (
                    server["status"], server["OS-EXT-SRV-ATTR:host"],
                    server["OS-EXT-STS:task_state"]) == ("ACTIVE", dest, None):
                return
            await asyncio.sleep(POLL)
        raise RuntimeError(f"live migration of {uuid} not done in {MIGRATION_TIMEOUT:.0f}s")

    async def _newest_migration(self, uuid: str) -> dict[str, Any] | None:
        resp = await self.cloud.client.get(f"/compute/v2.1/os-migrations?instance_uuid={uuid}",
                                           headers=self.cloud.headers)
        migrations = resp.json()["migrations"]
        return max(migrations, key=lambda m: m["id"]) if migrations else None

    async def _server(self, uuid: str) -> dict[str, Any]:
        resp = await self.cloud.client.get(f"/compute/v2.1/servers/{uuid}",
                                           headers=self.cloud.headers)
        server: dict[str, Any] = resp.json()["server"]
        return server

    async def delete(self, uuid: str) -> None:
        await self.cloud.client.delete(f"/compute/v2.1/servers/{uuid}",
                                       headers=self.cloud.headers)
