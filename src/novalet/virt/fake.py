"""The fake driver: the whole driver interface in memory, as its executable specification.

Functional tests and scale benchmarks use it. Host resources come from the
[fake] config section; `spawn_delay` simulates a slow hypervisor.
"""

from __future__ import annotations

import asyncio

from novalet import config
from novalet.compute.states import PowerState
from novalet.network.model import Vif
from novalet.virt.driver import (ComputeDriver, GuestInfo, GuestSpec, HostResources,
                                 InstanceNotFoundOnHost, VirtDriverError)

FAKE_UPTIME = " 08:32:11 up 93 days, 18:25, 12 users,  load average: 0.20, 0.12, 0.14"


class FakeDriver(ComputeDriver):
    def __init__(self, conf: config.Config) -> None:
        self.conf = conf
        self.host = conf.get("DEFAULT", "host")
        self.guests: dict[str, PowerState] = {}
        self.consoles: dict[str, list[str]] = {}
        self.specs: dict[str, GuestSpec] = {}
        self.rescued: set[str] = set()
        self.resize_backup: dict[str, GuestSpec] = {}

    async def init_host(self, host: str) -> None:
        self.host = host

    async def get_available_resource(self) -> HostResources:
        return HostResources(hypervisor_hostname=self.host, hypervisor_type="fake",
                             vcpus=self.conf.get("fake", "vcpus"),
                             memory_mb=self.conf.get("fake", "memory_mb"),
                             local_gb=self.conf.get("fake", "disk_gb"),
                             cpu_info={"arch": "x86_64", "model": "fake"},
                             hypervisor_version=1000)

    async def get_host_uptime(self) -> str:
        """A fixed line in uptime(1)'s format."""
        return FAKE_UPTIME

    async def list_instances(self) -> list[str]:
        return list(self.guests)

    async def spawn(self, spec: GuestSpec) -> None:
        delay = self.conf.get("fake", "spawn_delay")
        if delay:
            await asyncio.sleep(delay)
        if spec.metadata.get("fake_spawn_error"):
            raise VirtDriverError(reason=spec.metadata["fake_spawn_error"])
        self.guests[spec.uuid] = PowerState.RUNNING
        self.specs[spec.uuid] = spec
        self._log(spec.uuid, f"fake guest {spec.hostname} ({spec.uuid}) booted")

    async def destroy(self, uuid: str) -> None:
        self.guests.pop(uuid, None)
        self.consoles.pop(uuid, None)
        self.specs.pop(uuid, None)
        self.rescued.discard(uuid)
        self.resize_backup.pop(uuid, None)

    def _require(self, uuid: str) -> None:
        if uuid not in self.guests:
            raise InstanceNotFoundOnHost(uuid=uuid)

    def _set(self, uuid: str, state: PowerState, line: str) -> None:
        self._require(uuid)
        self.guests[uuid] = state
        self._log(uuid, line)

    def _log(self, uuid: str, line: str) -> None:
        self.consoles.setdefault(uuid, []).append(line)

    async def attach_interface(self, uuid: str, vif: Vif) -> None:
        self._require(uuid)
        spec = self.specs[uuid]
        if all(v.get("id") != vif.id for v in spec.network_info):
            spec.network_info.append(vif.to_dict())
        self._log(uuid, f"attached NIC {vif.address}")

    async def detach_interface(self, uuid: str, vif: Vif) -> None:
        self._require(uuid)
        spec = self.specs[uuid]
        spec.network_info[:] = [v for v in spec.network_info if v.get("id") != vif.id]
        self._log(uuid, f"detached NIC {vif.address}")

    async def reboot(self, uuid: str, hard: bool) -> None:
        self._set(uuid, PowerState.RUNNING, "hard reset" if hard else "rebooting")

    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        self._set(uuid, PowerState.SHUTDOWN, "power off")

    async def power_on(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "power on")

    async def pause(self, uuid: str) -> None:
        self._set(uuid, PowerState.PAUSED, "paused")

    async def unpause(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "unpaused")

    async def suspend(self, uuid: str) -> None:
        self._set(uuid, PowerState.SUSPENDED, "suspended")

    async def resume(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "resumed")

    async def get_info(self, uuid: str) -> GuestInfo:
        self._require(uuid)
        return GuestInfo(power_state=self.guests[uuid])

    async def get_console_output(self, uuid: str) -> str:
        self._require(uuid)
        return "\n".join(self.consoles.get(uuid, [])) + "\n"

    async def snapshot(self, uuid: str, dest: str) -> str:
        self._require(uuid)
        with open(dest, "wb") as handle:
            handle.write(f"fake snapshot of {uuid}\n".encode())
        return "raw"

    async def rescue(self, uuid: str, rescue: GuestSpec) -> None:
        self._set(uuid, PowerState.RUNNING, f"rescue boot from image {rescue.image_ref}")
        self.rescued.add(uuid)

    async def unrescue(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "booted from own disk")
        self.rescued.discard(uuid)

    async def rebuild(self, spec: GuestSpec) -> None:
        self._set(spec.uuid, PowerState.RUNNING, f"rebuilt from image {spec.image_ref}")
        self.specs[spec.uuid] = spec

    async def resize(self, uuid: str, spec: GuestSpec) -> None:
        self._require(uuid)
        self.resize_backup[uuid] = self.specs[uuid]
        self.specs[uuid] = spec
        self._set(uuid, PowerState.RUNNING, f"resized to {spec.memory_mb} MB")

    async def confirm_resize(self, uuid: str) -> None:
        self._require(uuid)
        self.resize_backup.pop(uuid, None)

    async def revert_resize(self, uuid: str) -> None:
        self._require(uuid)
        self.specs[uuid] = self.resize_backup.pop(uuid)
        self._set(uuid, PowerState.RUNNING, f"reverted to {self.specs[uuid].memory_mb} MB")
