"""NICs hot-plugged into and out of a guest over QMP, kept in its saved config.

A NIC lives on its vif's tap; QEMU's ids for it are named for the tap
(cmdline.nic_ids). The saved config (domain.json) lists the taps, so a guest
started later gets the NICs attached while it was off, and loses the detached
ones. The caller holds the guest's lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from novalet import config
from novalet.network.model import Vif
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu import cmdline
from novalet.virt.qemu.guest import Guests
from novalet.virt.qemu.layout import GuestConfig, InstancePaths, write_atomic


class Interfaces:
    """Attach and detach the NICs of the guests `guests` runs."""

    def __init__(self, guests: Guests, conf: config.Config) -> None:
        self.guests = guests
        self.conf = conf

    async def attach(self, paths: InstancePaths, vif: Vif) -> None:
        """Hot-plug a NIC on the vif's tap into a running guest (netdev_add and
        device_add); the saved config keeps it for later starts. Idempotent."""
        guest_config = paths.load()
        if guest_config.vif_model is None:
            raise VirtDriverError(reason=f"instance {paths.uuid} has no NIC model "
                                         "(hw_vif_model) to attach an interface with")
        if any(tap == vif.tap for tap, _ in guest_config.taps):
            return
        if self.guests.pid(paths) is not None:
            await self._hotplug(paths, guest_config, vif)
        _save(paths, dataclasses.replace(
            guest_config, taps=(*guest_config.taps, (vif.tap, vif.address))))

    async def _hotplug(self, paths: InstancePaths, guest_config: GuestConfig,
                       vif: Vif) -> None:
        netdev, device = cmdline.nic_ids(vif.tap)
        await self.guests.execute(paths, "netdev_add", {
            "type": "tap", "id": netdev, "ifname": vif.tap, "script": "no",
            "downscript": "no"})
        try:
            await self.guests.execute(paths, "device_add", {
                "driver": cmdline.VIF_MODELS[str(guest_config.vif_model)], "id": device,
                "netdev": netdev, "mac": vif.address, "romfile": ""})
        except Exception:
            await self.guests.execute(paths, "netdev_del", {"id": netdev})
            raise

    async def detach(self, paths: InstancePaths, vif: Vif) -> None:
        """Unplug the vif's NIC: the guest must release the device (ACPI hot-unplug),
        which it is given `[qemu] detach_timeout` seconds for."""
        guest_config = paths.load()
        if self.guests.pid(paths) is not None:
            netdev, device = cmdline.nic_ids(vif.tap)
            if device in await self._devices(paths):
                await self.guests.execute(paths, "device_del", {"id": device})
                await self._wait_released(paths, device)
            await self.guests.execute(paths, "netdev_del", {"id": netdev})
        _save(paths, dataclasses.replace(
            guest_config, taps=tuple(t for t in guest_config.taps if t[0] != vif.tap)))

    async def _devices(self, paths: InstancePaths) -> set[str]:
        """Ids of the devices added with an id (-device id=..., device_add)."""
        found = await self.guests.execute(paths, "qom-list", {"path": "/machine/peripheral"})
        return {str(item["name"]) for item in found}

    async def _wait_released(self, paths: InstancePaths, device: str) -> None:
        deadline = time.monotonic() + float(self.conf.get("qemu", "detach_timeout"))
        while device in await self._devices(paths):
            if time.monotonic() > deadline:
                raise VirtDriverError(reason=f"the guest did not release NIC {device} "
                                             "(does its OS support PCI hot-unplug?)")
            await asyncio.sleep(0.2)


def _save(paths: InstancePaths, guest_config: GuestConfig) -> None:
    write_atomic(paths.config, guest_config.to_json())
