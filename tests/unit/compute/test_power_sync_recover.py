"""Start-up recovery removes guests no record names this host for, except one the
driver kept at start because it arrived by live migration (its only copy: the
destination restarted before its finish step moved the record)."""

from __future__ import annotations

from typing import Any

from novalet import config
from novalet.compute.power_sync import PowerStateSync
from novalet.virt.driver import GuestSpec
from novalet.virt.fake import FakeDriver


def spec(uuid: str) -> GuestSpec:
    return GuestSpec(uuid=uuid, name=uuid, hostname=uuid, vcpus=1, memory_mb=64, root_gb=1,
                     ephemeral_gb=0, swap_mb=0, image_ref="img")


class Adopting(FakeDriver):
    def __init__(self, adopted: set[str]) -> None:
        super().__init__(config.Config())
        self.adopted = adopted

    def adopted_at_start(self) -> set[str]:
        return set(self.adopted)


class NoRecords:
    """A conductor with no instance on this host."""

    async def instances_on_host(self, ctx: Any, host: str) -> list[Any]:
        return []


async def test_recovery_keeps_a_guest_the_driver_adopted_and_removes_other_orphans() -> None:
    driver = Adopting({"arrived"})
    for uuid in ("arrived", "orphan"):
        await driver.spawn(spec(uuid))
    sync = PowerStateSync("h1", driver, NoRecords())  # type: ignore[arg-type]
    assert await sync.recover() == ["orphan"]
    assert await driver.list_instances() == ["arrived"]
